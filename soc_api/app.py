"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from soc_api.errors import install_handlers
from soc_api.routes import health, incidents
from socmon import __version__
from socmon.db import Database
from socmon.store import Store


def create_app(db: Database, store: Store | None, *, embedded: bool = False) -> FastAPI:
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
    install_handlers(app)
    api = APIRouter(prefix="/api")
    api.include_router(health.router)
    api.include_router(incidents.router)
    app.include_router(api)
    return app
