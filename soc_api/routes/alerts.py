"""Alerts: search in the event store's alerts index, scoped to the caller.

Every query carries the caller's scope (`Scope.store_filters`): only alerts whose
`socmon.unit` is one of the caller's units (admins and `"*"`: every alert, those without a unit
included), and for provider analysts none that touch a system flagged state-secret (the
enrichment marks `socmon.source/destination/observer.state_secret` from the inventory). The
filter is part of the store query, so counts and pages are right.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from soc_api.access_policy import SOC_READ
from soc_api.deps import AgencyScope, CurrentUser, SessionDep, WriteRoute, require_roles
from soc_api.errors import ApiProblem, ErrorResponse
from soc_api.labels import SEVERITY
from soc_api.routes.exports import (
    EXPORT_MAX_ROWS,
    ROWS_HEADER,
    TRUNCATED_HEADER,
    ExportFormat,
    export_responses,
    record_export,
    stream,
)
from socmon.ecs import get_field
from socmon.store import Store

MAX_WINDOW = 10_000  # the store's max_result_window: offset + limit beyond it is refused

router = APIRouter(
    route_class=WriteRoute,
    prefix="/alerts",
    tags=["alerts"],
    dependencies=[Depends(require_roles(*SOC_READ))],
    responses={
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        503: {"model": ErrorResponse, "description": "the event store is unavailable"},
    },
)

Level = Literal["informational", "low", "medium", "high", "critical"]
SORTS = {
    "-timestamp": [{"@timestamp": "desc"}],
    "timestamp": [{"@timestamp": "asc"}],
    "-severity": [{"event.severity": "desc"}, {"@timestamp": "desc"}],
    "severity": [{"event.severity": "asc"}, {"@timestamp": "desc"}],
}


class Labels(BaseModel):
    vi: str
    en: str


class AlertPublic(BaseModel):
    id: str
    timestamp: datetime | None
    rule_id: str | None
    rule_name: str | None
    level: str | None
    level_label: Labels | None
    message: str | None
    unit: str | None
    security_level: int | None = Field(description="highest cấp độ of the systems involved")
    tags: list[str]
    source_ip: str | None
    destination_ip: str | None
    host_name: str | None
    user_name: str | None


class AlertsPublic(BaseModel):
    data: list[AlertPublic]
    count: int


class AlertDetail(AlertPublic):
    document: dict[str, Any] = Field(description="the alert document as stored")


def get_store(request: Request) -> Store:
    store: Store | None = request.app.state.store
    if store is None:
        raise ApiProblem(503, "unavailable", "no event store is configured")
    return store


StoreDep = Annotated[Store, Depends(get_store)]


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, list):
        return _str(value[0]) if value else None
    return str(value)


def _time(value: Any) -> datetime | None:
    text = _str(value)
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def to_public(hit: dict[str, Any]) -> dict[str, Any]:
    src: dict[str, Any] = hit.get("_source") or {}
    level = _str(get_field(src, "socmon.alert.level"))
    tags = get_field(src, "tags")
    return {
        "id": str(hit["_id"]),
        "timestamp": _time(src.get("@timestamp")),
        "rule_id": _str(get_field(src, "rule.id")),
        "rule_name": _str(get_field(src, "rule.name")),
        "level": level,
        "level_label": SEVERITY.get(level) if level else None,
        "message": _str(src.get("message")),
        "unit": _str(get_field(src, "socmon.unit")),
        "security_level": _int(get_field(src, "socmon.level")),
        "tags": [str(t) for t in tags] if isinstance(tags, list) else [],
        "source_ip": _str(get_field(src, "source.ip")),
        "destination_ip": _str(get_field(src, "destination.ip")),
        "host_name": _str(get_field(src, "host.name")),
        "user_name": _str(get_field(src, "user.name")),
    }


def _iso(dt: datetime) -> str:
    dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def alert_query(
    scope: AgencyScope,
    since: Annotated[datetime | None, Query(description="from this time (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="before this time (exclusive)")] = None,
    rule_id: Annotated[str | None, Query(max_length=255)] = None,
    level: Annotated[list[Level] | None, Query(description="one or more Sigma levels")] = None,
    q: Annotated[
        str | None, Query(max_length=500, description="words in the alert message (all of them)")
    ] = None,
    unit: Annotated[str | None, Query(max_length=64, description="owner unit code")] = None,
) -> dict[str, Any]:
    """The store query of the search's filters (shared by the export), the scope included."""
    filters, must_not = scope.store_filters()
    if since is not None or until is not None:
        bounds: dict[str, str] = {}
        if since is not None:
            bounds["gte"] = _iso(since)
        if until is not None:
            bounds["lt"] = _iso(until)
        filters.append({"range": {"@timestamp": bounds}})
    if rule_id:
        filters.append({"term": {"rule.id": rule_id}})
    if level:
        filters.append({"terms": {"socmon.alert.level": sorted(set(level))}})
    if unit:
        filters.append({"term": {"socmon.unit": unit}})
    must: list[Any] = []
    if q and q.strip():
        must.append(
            {"simple_query_string": {"query": q, "fields": ["message"], "default_operator": "and"}}
        )
    return {"bool": {"filter": filters, "must_not": must_not, "must": must}}


AlertQuery = Annotated[dict[str, Any], Depends(alert_query)]
AlertSort = Literal["-timestamp", "timestamp", "-severity", "severity"]


def _total(resp: dict[str, Any]) -> int:
    total = resp["hits"].get("total", 0)
    return int(total["value"] if isinstance(total, dict) else total)


@router.get("", response_model=AlertsPublic, summary="Search alerts (newest first)")
def search_alerts(
    store: StoreDep,
    query: AlertQuery,
    sort: Annotated[AlertSort, Query()] = "-timestamp",
    offset: Annotated[int, Query(ge=0, le=MAX_WINDOW)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    if offset + limit > MAX_WINDOW:
        raise ApiProblem(
            422,
            "invalid_request",
            f"offset + limit must stay within {MAX_WINDOW}; narrow the search",
        )
    resp = store.search(
        store.alerts_target,
        query=query,
        sort=[*SORTS[sort], {"socmon.alert.id": "asc"}],
        from_=offset,
        size=limit,
        track_total_hits=True,
    )
    return {"data": [to_public(h) for h in resp["hits"]["hits"]], "count": _total(resp)}


ALERT_CSV_COLUMNS = [name for name in AlertPublic.model_fields if name != "level_label"]
EXPORT_PAGE = 1000  # alerts per store search while exporting (search_after)


@router.get(
    "/export",
    response_class=Response,
    responses={**export_responses("AlertPublic"), 422: {"model": ErrorResponse}},
    summary="Export the alerts the search's filters select (CSV or JSON lines, audited)",
    description=(
        "Streams every matching alert in the caller's scope, in `sort` order, up to `limit`"
        f" (at most {EXPORT_MAX_ROWS}), paging through the store with `search_after`."
        f" `{TRUNCATED_HEADER}: true` when more matched; `{ROWS_HEADER}` gives the rows sent."
        " The export is recorded in the audit log (filters, format, rows) before the first row"
        " is sent. CSV: `tags` as a JSON list."
    ),
)
def export_alerts(
    request: Request,
    store: StoreDep,
    session: SessionDep,
    user: CurrentUser,
    query: AlertQuery,
    fmt: Annotated[
        ExportFormat, Query(alias="format", description="csv or json (JSON lines)")
    ] = "csv",
    sort: Annotated[AlertSort, Query()] = "-timestamp",
    limit: Annotated[int, Query(ge=1, le=EXPORT_MAX_ROWS)] = EXPORT_MAX_ROWS,
) -> Response:
    matched = _total(store.search(store.alerts_target, query=query, size=0, track_total_hits=True))
    rows = min(matched, limit)
    record_export(session, user, "alerts", request, fmt, rows, matched > limit)
    order = [*SORTS[sort], {"socmon.alert.id": "asc"}]

    def produce() -> Iterator[dict[str, Any]]:
        left, after = rows, None
        while left > 0:
            body: dict[str, Any] = {"query": query, "sort": order, "size": min(EXPORT_PAGE, left)}
            if after is not None:
                body["search_after"] = after
            hits = store.search(store.alerts_target, **body)["hits"]["hits"]
            if not hits:
                return
            for hit in hits[:left]:
                yield to_public(hit)
            left -= len(hits)
            after = hits[-1].get("sort")
            if after is None:
                return

    return stream(produce(), fmt, "alerts", ALERT_CSV_COLUMNS, rows, matched > limit)


@router.get(
    "/{alert_id}",
    response_model=AlertDetail,
    summary="One alert with its stored document",
    responses={404: {"model": ErrorResponse}},
)
def get_alert(
    alert_id: Annotated[str, Path(min_length=1, max_length=128)],
    store: StoreDep,
    scope: AgencyScope,
) -> dict[str, Any]:
    filters, must_not = scope.store_filters()
    filters.append({"ids": {"values": [alert_id]}})
    resp = store.search(
        store.alerts_target, query={"bool": {"filter": filters, "must_not": must_not}}, size=1
    )
    found = resp["hits"]["hits"]
    if not found:
        raise ApiProblem(404, "not_found", f"alert {alert_id!r} not found")
    return {**to_public(found[0]), "document": found[0].get("_source") or {}}
