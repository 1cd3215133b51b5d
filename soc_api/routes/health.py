"""GET /api/health: the state of the store and the database (no authentication)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/health", summary="State of the event store and the database")
def health(request: Request) -> JSONResponse:
    state = request.app.state
    db: dict[str, Any] = state.db.health()
    store: dict[str, Any] = (
        state.store.health() if state.store is not None else {"status": "not configured"}
    )
    if state.embedded:
        store["embedded"] = True
    ok = db["status"] == "ok" and store["status"] == "ok"
    body = {"status": "ok" if ok else "degraded", "store": store, "database": db}
    return JSONResponse(body, status_code=200)
