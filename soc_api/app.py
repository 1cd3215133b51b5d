"""The FastAPI application factory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from soc_api.deps import get_current_user
from soc_api.errors import ApiProblem, install_handlers
from soc_api.models import User
from soc_api.routes import health, incidents, rules, sources
from socmon import __version__
from socmon.db import Database
from socmon.store import Store

if TYPE_CHECKING:
    from detections.catalog import RuleCatalog

METRICS_ROLES = {"admin", "sysadmin"}


def create_app(
    db: Database,
    store: Store | None,
    *,
    embedded: bool = False,
    silence_seconds: float = 900,
    catalog: RuleCatalog | None = None,
) -> FastAPI:
    """The API over `db` and `store`; `catalog` (the running rules) enables `/api/rules`.

    The per-rule changes stored in the database are applied to `catalog` here.
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
    if catalog is not None:
        with db.session() as session:
            catalog.apply_overrides(rules.load_overrides(session))
    install_handlers(app)
    api = APIRouter(prefix="/api")
    api.include_router(health.router)
    api.include_router(incidents.router)
    api.include_router(sources.router)
    api.include_router(rules.router)
    app.include_router(api)

    @app.get("/metrics", tags=["metrics"], summary="Prometheus metrics (admin or sysadmin token)")
    def metrics(user: User = Depends(get_current_user)) -> Response:  # noqa: B008
        if user.role not in METRICS_ROLES:
            raise ApiProblem(403, "forbidden", "metrics need the admin or sysadmin role")
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
