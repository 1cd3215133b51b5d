"""GET /api/health: the state of the store and the database (no authentication)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from soc_api.deps import WriteRoute

router = APIRouter(route_class=WriteRoute, tags=["health"])


class BackendHealth(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    store: BackendHealth
    database: BackendHealth


@router.get(
    "/health", response_model=HealthPublic, summary="State of the event store and the database"
)
def health(request: Request) -> dict[str, Any]:
    state = request.app.state
    db: dict[str, Any] = state.db.health()
    store: dict[str, Any] = (
        state.store.health() if state.store is not None else {"status": "not configured"}
    )
    if state.embedded:
        store["embedded"] = True
    ok = db["status"] == "ok" and store["status"] == "ok"
    return {"status": "ok" if ok else "degraded", "store": store, "database": db}
