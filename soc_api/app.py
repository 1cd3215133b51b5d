"""The FastAPI application factory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter

from inventory.store import UnitTree
from soc_api.access_login import DbLoginLimiter, Limiter
from soc_api.access_policy import OPERATIONS
from soc_api.console.routes import router as console_router
from soc_api.deps import get_current_user
from soc_api.errors import ApiProblem, ErrorResponse, install_handlers
from soc_api.models import User
from soc_api.routes import (
    alerts,
    compliance,
    health,
    incidents,
    inventory,
    playbooks,
    rules,
    sources,
    users,
)
from socmon import __version__
from socmon.db import Database
from socmon.store import Store

if TYPE_CHECKING:
    from detections.catalog import RuleCatalog

METRICS_ROLES = frozenset(OPERATIONS)


def create_app(
    db: Database,
    store: Store | None,
    *,
    embedded: bool = False,
    silence_seconds: float = 900,
    catalog: RuleCatalog | None = None,
    login_limiter: Limiter | None = None,
) -> FastAPI:
    """The API over `db` and `store`; `catalog` (the running rules) enables `/api/rules`.

    The per-rule changes stored in the database are applied to `catalog` here. Failed console
    logins are counted by `login_limiter` (default: 5 per user name and per client address in
    5 minutes, in the database: shared by every API process).
    """
    app = FastAPI(
        title="socmon API",
        version=__version__,
        description="Security monitoring of a provincial data centre (Giám sát an toàn thông tin).",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.db = db
    app.state.store = store
    app.state.embedded = embedded
    app.state.silence_seconds = silence_seconds
    app.state.catalog = catalog
    app.state.login_limiter = login_limiter or DbLoginLimiter(db)
    app.state.unit_tree = UnitTree(db)
    if catalog is not None:
        with db.session() as session:
            catalog.apply_overrides(rules.load_overrides(session))
    install_handlers(app)

    @app.exception_handler(users.RateLimited)
    async def _rate_limited(_: Request, exc: users.RateLimited) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": exc.code, "message": exc.message}},
            status_code=exc.status,
            headers={"Retry-After": str(exc.retry_after)},
        )

    api = APIRouter(prefix="/api")
    api.include_router(health.router)
    api.include_router(incidents.router)
    api.include_router(incidents.suppressions_router)
    api.include_router(playbooks.router)
    api.include_router(playbooks.runs_router)
    api.include_router(sources.router)
    api.include_router(rules.router)
    api.include_router(alerts.router)
    api.include_router(users.router)
    api.include_router(users.roles_router)
    api.include_router(users.login_router)
    api.include_router(compliance.router)
    api.include_router(inventory.router)
    app.include_router(api)
    app.include_router(console_router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/incidents", status_code=303)

    @app.get(
        "/metrics",
        tags=["metrics"],
        summary="Prometheus metrics (admin or sysadmin token)",
        response_class=Response,
        responses={
            200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}},
            401: {"model": ErrorResponse},
            403: {"model": ErrorResponse},
        },
    )
    def metrics(user: User = Depends(get_current_user)) -> Response:  # noqa: B008
        if user.role not in METRICS_ROLES:
            raise ApiProblem(403, "forbidden", "metrics need the admin or sysadmin role")
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    _complete_openapi(app)
    return app


def app_from_settings() -> FastAPI:
    """The API alone, from the settings (`socmon api`: uvicorn's factory, one per worker
    process). No rule catalog runs here, so `/api/rules` is off; incidents (changed through
    the same incident service and playbook engine as the stack's), alerts, inventory and
    compliance are served from the shared database and store."""
    from socmon.config import get_settings

    s = get_settings()
    if s.embedded_store:
        raise ApiProblem(500, "config", "socmon api needs SOCMON_ES_URL (the running store)")
    db = Database(s.effective_db_url)
    db.migrate()
    app = create_app(db, Store.connect(s, s.es_url), silence_seconds=s.source_silence_seconds)
    from playbooks.engine import service_with_playbooks

    app.state.incident_service, app.state.playbook_engine = service_with_playbooks(s, db)
    app.state.settings = s
    return app


_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def _complete_openapi(app: FastAPI) -> None:
    """Document the one error model everywhere: the 422 of FastAPI's request validation has
    our `ErrorResponse` shape (errors.install_handlers), every authenticated operation may
    answer 401, and every operation 503 when the database or the event store is down."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        if "ErrorResponse" not in schemas:
            schemas.update(
                {
                    name: model
                    for name, model in TypeAdapter(ErrorResponse)
                    .json_schema(ref_template="#/components/schemas/{model}")
                    .pop("$defs", {})
                    .items()
                }
            )
            schemas["ErrorResponse"] = TypeAdapter(ErrorResponse).json_schema(
                ref_template="#/components/schemas/{model}"
            )
            schemas["ErrorResponse"].pop("$defs", None)
        for operations in schema.get("paths", {}).values():
            for op in operations.values():
                responses = op.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = _error("Invalid request (parameters or body)")
                if "requestBody" in op:
                    responses.setdefault("400", _error("The body is not readable JSON"))
                if op.get("security"):
                    responses.setdefault(
                        "401", _error("Missing, invalid, expired or revoked token")
                    )
                responses.setdefault(
                    "503", _error("The database or the event store is unavailable")
                )
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
