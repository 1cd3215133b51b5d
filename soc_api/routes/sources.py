"""Log sources: health of every source every collector process has seen."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from soc_api.deps import AgencyScope, CurrentUser, WriteRoute
from soc_api.errors import ErrorResponse

router = APIRouter(
    route_class=WriteRoute,
    prefix="/sources",
    tags=["sources"],
    responses={401: {"model": ErrorResponse}},
)


class SourcePublic(BaseModel):
    source: str
    host: str
    collector: str
    first_seen: float
    last_seen: float
    silent_seconds: float
    silent: bool
    eps: float
    events: int
    bytes: int
    parse_failures: int
    drops: int
    unit: str | None = None


class SourcesPublic(BaseModel):
    data: list[SourcePublic]
    count: int


@router.get(
    "", response_model=SourcesPublic, summary="Source health (events/s, last seen, failures, drops)"
)
def list_sources(
    request: Request,
    _user: CurrentUser,
    scope: AgencyScope,
    silent: Annotated[
        bool | None, Query(description="only silent (true) or only live (false) sources")
    ] = None,
) -> dict[str, Any]:
    from detections.silence import read_sources

    settings_threshold: float = request.app.state.silence_seconds
    store = request.app.state.store
    rows = read_sources(store) if store is not None else []
    now = time.time()
    data = []
    for row in rows:
        if not scope.everything and row.get("unit") not in scope.units:
            continue
        quiet = max(0.0, now - float(row.get("last_seen", 0)))
        item = {**row, "silent_seconds": round(quiet, 1), "silent": quiet > settings_threshold}
        if silent is None or item["silent"] == silent:
            data.append(item)
    data.sort(key=lambda r: (r["host"], r["source"]))
    return {"data": data, "count": len(data)}
