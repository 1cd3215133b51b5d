"""Incidents and suppressions: list, detail, changes, comments, merge, split.

Everything is scoped to the caller's units (`AgencyScope`): an incident of another unit is
a 404, as if it did not exist. Every change is audited (hash chain) and on the timeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Row, case, func, or_, select

from soc_api.access_policy import PROVINCIAL_EDIT, SOC_READ, SOC_WORK
from soc_api.deps import (
    AgencyScope,
    CurrentUser,
    Scope,
    SessionDep,
    WriteRoute,
    require_roles,
    scope_of,
)
from soc_api.errors import ApiProblem, ErrorResponse
from soc_api.incidents import (
    OBSERVABLE_TYPES,
    SEVERITY_ORDER,
    IncidentError,
    IncidentService,
    record_audit,
)
from soc_api.incidents import parse_time as as_utc
from soc_api.labels import (
    INCIDENT_CATEGORY,
    INCIDENT_STATUS,
    OBSERVABLE_TYPE,
    RESPONSE_PATH,
    SEVERITY,
    TIMELINE_KIND,
    label,
)
from soc_api.models import (
    Incident,
    IncidentAlert,
    IncidentComment,
    IncidentEvent,
    IncidentObservable,
    Suppression,
    User,
)
from soc_api.routes.exports import (
    EXPORT_MAX_ROWS,
    ROWS_HEADER,
    TRUNCATED_HEADER,
    ExportFormat,
    export_responses,
    record_export,
    stream,
)
from socmon.db import Database

# Bounds that keep bad input a 4xx on every database: ids fit a 32-bit integer column, text
# carries no NUL (PostgreSQL refuses it).
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
IncidentId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="incident id")]
SuppressionId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="suppression id")]
NO_NUL = r"^[^\x00]*$"
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]

# Roles (soc_api/access_policy.py): reading needs SOC_READ (router), changing an incident
# SOC_WORK, changing a suppression PROVINCIAL_EDIT (per operation).
ROLE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
}
router = APIRouter(
    route_class=WriteRoute,
    prefix="/incidents",
    tags=["incidents"],
    responses=ROLE_ERRORS,
    dependencies=[Depends(require_roles(*SOC_READ))],
)
suppressions_router = APIRouter(
    route_class=WriteRoute,
    prefix="/suppressions",
    tags=["suppressions"],
    responses=ROLE_ERRORS,
    dependencies=[Depends(require_roles(*SOC_READ))],
)
WORK = [Depends(require_roles(*SOC_WORK))]
EDIT = [Depends(require_roles(*PROVINCIAL_EDIT))]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
}
# The API's changes use the service's rules (transitions, paths); the policy's windows and
# groups matter only for ingestion, so the default policy is enough here.
SERVICE = IncidentService()  # without a running stack (tests, tools): no listeners


async def get_service(request: Request) -> IncidentService:
    """The stack's incident service (its playbook engine listens to changes), or a plain one."""
    service = getattr(request.app.state, "incident_service", None)
    return service if isinstance(service, IncidentService) else SERVICE


ServiceDep = Annotated[IncidentService, Depends(get_service)]
MAX_DETAIL_ROWS = 1000
# The list's `count` is exact up to offset + limit + COUNT_LIMIT matching incidents; beyond
# that it stops counting (`count_exact` false): counting a province's whole history on every
# page costs more than the page itself.
COUNT_LIMIT = 10_000


class Labels(BaseModel):
    vi: str
    en: str


class IncidentPublic(BaseModel):
    id: int
    title: str
    rule_id: str
    severity: str
    severity_label: Labels | None
    status: str
    status_label: Labels | None
    category: str | None
    category_label: Labels | None
    response_path: str
    response_path_label: Labels | None
    unit: str | None
    level: int | None = Field(description="highest security level (cấp độ) of affected systems")
    assignee_id: int | None
    merged_into_id: int | None
    group_fields: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    alert_count: int
    created_at: datetime
    updated_at: datetime


class IncidentsPublic(BaseModel):
    data: list[IncidentPublic]
    count: int = Field(
        description=f"matching incidents, counted up to offset + limit + {COUNT_LIMIT}"
    )
    count_exact: bool = Field(
        default=True,
        description="false when `count` stopped at that bound: there are more incidents",
    )


class AlertRef(BaseModel):
    alert_id: str
    event_id: str
    rule_id: str
    ts: datetime
    fields: dict[str, Any]


class ObservablePublic(BaseModel):
    type: str
    type_label: Labels | None
    value: str
    first_seen: datetime
    last_seen: datetime
    count: int


class TimelineEntry(BaseModel):
    ts: datetime
    actor: str
    kind: str
    kind_label: Labels | None
    detail: dict[str, Any]


class CommentPublic(BaseModel):
    id: int
    ts: datetime
    author: str
    body: str


class IncidentDetail(IncidentPublic):
    alerts: list[AlertRef]
    observables: list[ObservablePublic]
    observable_count: int
    timeline: list[TimelineEntry]
    comments: list[CommentPublic]


class IncidentUpdate(BaseModel):
    """Only the fields given change; `assignee_id: null` unassigns."""

    state: str | None = Field(
        default=None, max_length=32, description="new state (allowed transitions only)"
    )
    severity: str | None = None
    assignee_id: Id | None = None
    group: str | None = Field(
        default=None, max_length=8, description="Decision 05/2017 group, A1-C5"
    )


class CommentCreate(BaseModel):
    body: str = Field(min_length=1, max_length=20000, pattern=NO_NUL)


class MergeRequest(BaseModel):
    incident_ids: list[Id] = Field(min_length=1, max_length=100)


class SplitRequest(BaseModel):
    alert_ids: list[Annotated[str, Field(max_length=64, pattern=NO_NUL)]] = Field(
        min_length=1, max_length=10000
    )
    title: str | None = Field(default=None, max_length=500, pattern=NO_NUL)


class SuppressionCreate(BaseModel):
    rule_id: str = Field(min_length=1, max_length=255, pattern=NO_NUL)
    match: dict[str, Any] = Field(
        default_factory=dict, description="alert field -> value (or list of values); all must hold"
    )
    reason: str = Field(min_length=1, max_length=5000, pattern=NO_NUL)
    expires_at: datetime
    unit: str | None = Field(
        default=None, max_length=64, pattern=NO_NUL, description="null: every unit"
    )


class SuppressionUpdate(BaseModel):
    reason: str | None = Field(default=None, min_length=1, max_length=5000, pattern=NO_NUL)
    expires_at: datetime | None = None


class SuppressionPublic(BaseModel):
    id: int
    rule_id: str
    match: dict[str, Any]
    reason: str
    unit: str | None
    expires_at: datetime
    active: bool
    created_by: str
    created_at: datetime
    hits: int
    last_hit_at: datetime | None


class SuppressionsPublic(BaseModel):
    data: list[SuppressionPublic]
    count: int


def to_public(inc: Incident | Row[Any]) -> dict[str, Any]:
    """The public fields of an incident (an ORM object or a row of `PUBLIC_COLUMNS`)."""
    return {
        "id": inc.id,
        "title": inc.title,
        "rule_id": inc.rule_id,
        "severity": inc.severity,
        "severity_label": label(SEVERITY, inc.severity),
        "status": inc.status,
        "status_label": label(INCIDENT_STATUS, inc.status),
        "category": inc.category,
        "category_label": label(INCIDENT_CATEGORY, inc.category),
        "response_path": inc.response_path,
        "response_path_label": label(RESPONSE_PATH, inc.response_path),
        "unit": inc.unit,
        "level": inc.level,
        "assignee_id": inc.assignee_id,
        "merged_into_id": inc.merged_into_id,
        "group_fields": inc.group_fields,
        "first_seen": as_utc(inc.first_seen),
        "last_seen": as_utc(inc.last_seen),
        "alert_count": inc.alert_count,
        "created_at": as_utc(inc.created_at),
        "updated_at": as_utc(inc.updated_at),
    }


# The list's columns, read with SQLAlchemy Core (no ORM objects for a page of 500).
PUBLIC_COLUMNS = (
    Incident.id,
    Incident.title,
    Incident.rule_id,
    Incident.severity,
    Incident.status,
    Incident.category,
    Incident.response_path,
    Incident.unit,
    Incident.level,
    Incident.assignee_id,
    Incident.merged_into_id,
    Incident.group_fields,
    Incident.first_seen,
    Incident.last_seen,
    Incident.alert_count,
    Incident.created_at,
    Incident.updated_at,
)


def json_response(content: Any) -> Response:
    """`content` as JSON, serialised by orjson without response-model validation: the
    routes that use it build exactly their `response_model`'s shape (the OpenAPI keeps it,
    tests/soc_api/test_openapi.py checks responses against it)."""
    body = orjson.dumps(content, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)
    return Response(body, media_type="application/json")


def _can_work(user: User, inc: Incident) -> bool:
    """An assignee must hold a role that works incidents and see this one in their scope."""
    return user.role in SOC_WORK and scope_of(user).allows(inc.unit, state_secret=inc.state_secret)


def _problem(e: IncidentError) -> ApiProblem:
    return ApiProblem(e.status, e.code, str(e))


def _scoped(
    session: SessionDep, scope: Scope, incident_id: IncidentId, *, lock: bool = False
) -> Incident:
    query = select(Incident).where(Incident.id == incident_id, scope.filter(Incident.unit))
    if lock:
        query = query.with_for_update()
    inc = session.scalars(query).first()
    if inc is None:
        raise ApiProblem(404, "not_found", f"incident {incident_id} not found")
    return inc


SORTS = {
    "last_seen": Incident.last_seen,
    "first_seen": Incident.first_seen,
    "created_at": Incident.created_at,
    "updated_at": Incident.updated_at,
    "id": Incident.id,
    "alert_count": Incident.alert_count,
    "severity": case({s: i for i, s in enumerate(SEVERITY_ORDER)}, value=Incident.severity),
}
SortKey = Literal[
    "-last_seen",
    "last_seen",
    "-first_seen",
    "first_seen",
    "-created_at",
    "created_at",
    "-updated_at",
    "updated_at",
    "-id",
    "id",
    "-alert_count",
    "alert_count",
    "-severity",
    "severity",
]


async def incident_where(
    scope: AgencyScope,
    state: Annotated[str | None, Query(description="filter by state code")] = None,
    status: Annotated[str | None, Query(description="same as state (older name)")] = None,
    severity: Annotated[str | None, Query()] = None,
    group: Annotated[str | None, Query(description="Decision 05/2017 group, A1-C5")] = None,
    unit: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    assignee: Annotated[int | None, Query(ge=1, le=MAX_ID, description="assignee user id")] = None,
    response_path: Annotated[Literal["normal", "serious"] | None, Query()] = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="text in title or rule id")
    ] = None,
) -> list[ColumnElement[bool]]:
    """The list's filters (shared by the export), the caller's scope first."""
    state = state or status
    if state is not None and state not in INCIDENT_STATUS:
        raise ApiProblem(422, "invalid_request", f"unknown state {state!r}")
    if severity is not None and severity not in SEVERITY:
        raise ApiProblem(422, "invalid_request", f"unknown severity {severity!r}")
    if group is not None and group.upper() not in INCIDENT_CATEGORY:
        raise ApiProblem(422, "invalid_request", f"unknown incident group {group!r}")
    where = [scope.filter(Incident.unit)]
    if state:
        where.append(Incident.status == state)
    if severity:
        where.append(Incident.severity == severity)
    if group:
        where.append(Incident.category == group.upper())
    if unit:
        where.append(Incident.unit == unit)
    if assignee is not None:
        where.append(Incident.assignee_id == assignee)
    if response_path:
        where.append(Incident.response_path == response_path)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            or_(
                Incident.title.ilike(pattern, escape="\\"),
                Incident.rule_id.ilike(pattern, escape="\\"),
            )
        )
    return where


IncidentWhere = Annotated[list[ColumnElement[bool]], Depends(incident_where)]


def order_of(sort: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    column = SORTS[sort.lstrip("-")]
    return (column.desc() if sort.startswith("-") else column.asc()), Incident.id.desc()


@router.get("", response_model=IncidentsPublic, summary="List incidents (newest first)")
def list_incidents(
    session: SessionDep,
    _user: CurrentUser,
    where: IncidentWhere,
    sort: Annotated[SortKey, Query()] = "-last_seen",
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    bound = offset + limit + COUNT_LIMIT
    counted = select(Incident.id).where(*where).limit(bound + 1).subquery()
    count = session.scalar(select(func.count()).select_from(counted)) or 0
    rows = session.execute(
        select(*PUBLIC_COLUMNS).where(*where).order_by(*order_of(sort)).offset(offset).limit(limit)
    )
    return json_response(
        {
            "data": [to_public(r) for r in rows],
            "count": min(count, bound),
            "count_exact": count <= bound,
        }
    )


INCIDENT_CSV_COLUMNS = [
    *(c.key for c in PUBLIC_COLUMNS if c.key != "group_fields"),
    "group_fields",
]


@router.get(
    "/export",
    response_class=Response,
    responses={**export_responses("IncidentPublic"), 422: {"model": ErrorResponse}},
    summary="Export the incidents the list's filters select (CSV or JSON lines, audited)",
    description=(
        "Streams every matching incident in the caller's scope, in `sort` order, up to"
        f" `limit` (at most {EXPORT_MAX_ROWS}). `{TRUNCATED_HEADER}: true` when more"
        f" matched; `{ROWS_HEADER}` gives the rows sent. The export is recorded in the audit"
        " log (filters, format, rows) before the first row is sent."
    ),
)
def export_incidents(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    where: IncidentWhere,
    fmt: Annotated[
        ExportFormat, Query(alias="format", description="csv or json (JSON lines)")
    ] = "csv",
    sort: Annotated[SortKey, Query()] = "-last_seen",
    limit: Annotated[int, Query(ge=1, le=EXPORT_MAX_ROWS)] = EXPORT_MAX_ROWS,
) -> Response:
    counted = select(Incident.id).where(*where).limit(limit + 1).subquery()
    matched = session.scalar(select(func.count()).select_from(counted)) or 0
    rows = min(matched, limit)
    record_export(session, user, "incidents", request, fmt, rows, matched > limit)
    db: Database = request.app.state.db
    query = select(*PUBLIC_COLUMNS).where(*where).order_by(*order_of(sort)).limit(rows)

    def produce() -> Iterator[dict[str, Any]]:
        if rows == 0:
            return
        with db.session() as s:
            for row in s.execute(query.execution_options(yield_per=1000)):
                yield to_public(row)

    return stream(produce(), fmt, "incidents", INCIDENT_CSV_COLUMNS, rows, matched > limit)


def _detail(session: SessionDep, inc: Incident) -> dict[str, Any]:
    """The detail's shape; its related rows are read as plain rows (Core), not ORM objects."""
    alerts = session.execute(
        select(
            IncidentAlert.alert_id,
            IncidentAlert.event_id,
            IncidentAlert.rule_id,
            IncidentAlert.ts,
            IncidentAlert.fields,
        )
        .where(IncidentAlert.incident_id == inc.id)
        .order_by(IncidentAlert.ts, IncidentAlert.id)
        .limit(MAX_DETAIL_ROWS)
    )
    observables = session.execute(
        select(
            IncidentObservable.type,
            IncidentObservable.value,
            IncidentObservable.first_seen,
            IncidentObservable.last_seen,
            IncidentObservable.count,
        )
        .where(IncidentObservable.incident_id == inc.id)
        .order_by(
            IncidentObservable.count.desc(), IncidentObservable.type, IncidentObservable.value
        )
        .limit(MAX_DETAIL_ROWS)
    ).all()
    if len(observables) < MAX_DETAIL_ROWS:
        n_obs = len(observables)
    else:
        n_obs = (
            session.scalar(
                select(func.count(IncidentObservable.id)).where(
                    IncidentObservable.incident_id == inc.id
                )
            )
            or 0
        )
    timeline = session.execute(
        select(IncidentEvent.ts, IncidentEvent.actor, IncidentEvent.kind, IncidentEvent.detail)
        .where(IncidentEvent.incident_id == inc.id)
        .order_by(IncidentEvent.id.desc())
        .limit(MAX_DETAIL_ROWS)
    ).all()
    comments = session.execute(
        select(IncidentComment.id, IncidentComment.ts, IncidentComment.author, IncidentComment.body)
        .where(IncidentComment.incident_id == inc.id)
        .order_by(IncidentComment.id)
        .limit(MAX_DETAIL_ROWS)
    )
    out = to_public(inc)
    out["alerts"] = [
        {
            "alert_id": a.alert_id,
            "event_id": a.event_id,
            "rule_id": a.rule_id,
            "ts": as_utc(a.ts),
            "fields": a.fields,
        }
        for a in alerts
    ]
    out["observables"] = [
        {
            "type": o.type,
            "type_label": label(OBSERVABLE_TYPE, o.type),
            "value": o.value,
            "first_seen": as_utc(o.first_seen),
            "last_seen": as_utc(o.last_seen),
            "count": o.count,
        }
        for o in observables
    ]
    out["observable_count"] = n_obs
    out["timeline"] = [
        {
            "ts": as_utc(e.ts),
            "actor": e.actor,
            "kind": e.kind,
            "kind_label": label(TIMELINE_KIND, e.kind),
            "detail": e.detail,
        }
        for e in reversed(timeline)
    ]
    out["comments"] = [
        {"id": c.id, "ts": as_utc(c.ts), "author": c.author, "body": c.body} for c in comments
    ]
    return out


@router.get(
    "/{incident_id}",
    response_model=IncidentDetail,
    responses=ERRORS,
    summary="One incident with its alerts, observables, timeline and comments",
)
def get_incident(
    incident_id: IncidentId, session: SessionDep, _user: CurrentUser, scope: AgencyScope
) -> Response:
    return json_response(_detail(session, _scoped(session, scope, incident_id)))


@router.get(
    "/{incident_id}/observables",
    response_model=list[ObservablePublic],
    responses=ERRORS,
    summary="An incident's observables (paged)",
)
def list_observables(
    incident_id: IncidentId,
    session: SessionDep,
    _user: CurrentUser,
    scope: AgencyScope,
    type: Annotated[str | None, Query(description="ip, host, user, hash, domain, url")] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[dict[str, Any]]:
    inc = _scoped(session, scope, incident_id)
    if type is not None and type not in OBSERVABLE_TYPES:
        raise ApiProblem(422, "invalid_request", f"unknown observable type {type!r}")
    query = select(IncidentObservable).where(IncidentObservable.incident_id == inc.id)
    if type:
        query = query.where(IncidentObservable.type == type)
    rows = session.scalars(
        query.order_by(IncidentObservable.type, IncidentObservable.value)
        .offset(offset)
        .limit(limit)
    )
    return [
        {
            "type": o.type,
            "type_label": label(OBSERVABLE_TYPE, o.type),
            "value": o.value,
            "first_seen": as_utc(o.first_seen),
            "last_seen": as_utc(o.last_seen),
            "count": o.count,
        }
        for o in rows
    ]


@router.patch(
    "/{incident_id}",
    dependencies=WORK,
    response_model=IncidentDetail,
    responses=ERRORS,
    summary="Change state, severity, assignee or group (audited)",
)
def update_incident(
    incident_id: IncidentId,
    body: IncidentUpdate,
    session: SessionDep,
    service: ServiceDep,
    user: CurrentUser,
    scope: AgencyScope,
) -> dict[str, Any]:
    given = body.model_fields_set
    if not given:
        raise ApiProblem(422, "invalid_request", "nothing to change")
    inc = _scoped(session, scope, incident_id, lock=True)
    assignee: User | None = None
    if "assignee_id" in given and body.assignee_id is not None:
        assignee = session.get(User, body.assignee_id)
        if assignee is None:
            raise ApiProblem(422, "invalid_request", f"user {body.assignee_id} not found")
    try:
        service.update(
            session,
            inc,
            user.name,
            state=body.state,
            severity=body.severity,
            group=body.group,
            assignee=assignee,
            unassign="assignee_id" in given and body.assignee_id is None,
            can_work=_can_work,
        )
    except IncidentError as e:
        raise _problem(e) from e
    return _detail(session, inc)


@router.post(
    "/{incident_id}/comments",
    dependencies=WORK,
    response_model=CommentPublic,
    status_code=201,
    responses=ERRORS,
    summary="Add a comment (audited, on the timeline)",
)
def add_comment(
    incident_id: IncidentId,
    body: CommentCreate,
    session: SessionDep,
    service: ServiceDep,
    user: CurrentUser,
    scope: AgencyScope,
) -> dict[str, Any]:
    inc = _scoped(session, scope, incident_id)
    try:
        c = service.comment(session, inc, user.name, body.body)
    except IncidentError as e:
        raise _problem(e) from e
    return {"id": c.id, "ts": as_utc(c.ts), "author": c.author, "body": c.body}


@router.post(
    "/{incident_id}/merge",
    dependencies=WORK,
    response_model=IncidentDetail,
    responses=ERRORS,
    summary="Merge other incidents into this one (they close as merged, pointing here)",
)
def merge_incidents(
    incident_id: IncidentId,
    body: MergeRequest,
    session: SessionDep,
    service: ServiceDep,
    user: CurrentUser,
    scope: AgencyScope,
) -> dict[str, Any]:
    target = _scoped(session, scope, incident_id, lock=True)
    for other in dict.fromkeys(body.incident_ids):
        source = _scoped(session, scope, other, lock=True)
        try:
            service.merge(session, target, source, user.name)
        except IncidentError as e:
            raise _problem(e) from e
    return _detail(session, target)


@router.post(
    "/{incident_id}/split",
    dependencies=WORK,
    response_model=IncidentDetail,
    status_code=201,
    responses=ERRORS,
    summary="Move some alerts out into a new incident; returns the new incident",
)
def split_incident(
    incident_id: IncidentId,
    body: SplitRequest,
    session: SessionDep,
    service: ServiceDep,
    user: CurrentUser,
    scope: AgencyScope,
) -> dict[str, Any]:
    inc = _scoped(session, scope, incident_id, lock=True)
    try:
        new = service.split(session, inc, body.alert_ids, user.name, title=body.title)
    except IncidentError as e:
        raise _problem(e) from e
    return _detail(session, new)


# -- suppressions --------------------------------------------------------------------------


def _sup_public(s: Suppression) -> dict[str, Any]:
    expires = as_utc(s.expires_at)
    return {
        "id": s.id,
        "rule_id": s.rule_id,
        "match": s.match,
        "reason": s.reason,
        "unit": s.unit,
        "expires_at": expires,
        "active": expires > datetime.now(UTC),
        "created_by": s.created_by,
        "created_at": as_utc(s.created_at),
        "hits": s.hits,
        "last_hit_at": as_utc(s.last_hit_at) if s.last_hit_at else None,
    }


def _sup_scoped(session: SessionDep, scope: Scope, suppression_id: int) -> Suppression:
    """A suppression the caller may see: of one of its units (every unit: `*` scope only)."""
    sup = session.scalars(
        select(Suppression).where(Suppression.id == suppression_id, scope.filter(Suppression.unit))
    ).first()
    if sup is None:
        raise ApiProblem(404, "not_found", f"suppression {suppression_id} not found")
    return sup


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@suppressions_router.get("", response_model=SuppressionsPublic, summary="List suppressions")
def list_suppressions(
    session: SessionDep,
    _user: CurrentUser,
    scope: AgencyScope,
    rule_id: Annotated[str | None, Query(max_length=255, pattern=NO_NUL)] = None,
    active: Annotated[
        bool | None, Query(description="only active (true) or expired (false)")
    ] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    where = [scope.filter(Suppression.unit)]
    if rule_id:
        where.append(Suppression.rule_id == rule_id)
    now = datetime.now(UTC)
    if active is True:
        where.append(Suppression.expires_at > now)
    elif active is False:
        where.append(Suppression.expires_at <= now)
    count = session.scalar(select(func.count()).select_from(Suppression).where(*where)) or 0
    rows = session.scalars(
        select(Suppression)
        .where(*where)
        .order_by(Suppression.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return {"data": [_sup_public(s) for s in rows], "count": count}


@suppressions_router.post(
    "",
    dependencies=EDIT,
    response_model=SuppressionPublic,
    status_code=201,
    responses=ERRORS,
    summary="Suppress a rule's alerts (optionally only given field values) until a time",
)
def create_suppression(
    body: SuppressionCreate, session: SessionDep, user: CurrentUser, scope: AgencyScope
) -> dict[str, Any]:
    if body.unit is None and not scope.everything:
        raise ApiProblem(422, "invalid_request", "give the unit: your scope is not every unit")
    if body.unit is not None and not scope.everything and body.unit not in scope.units:
        raise ApiProblem(422, "invalid_request", f"unit {body.unit!r} is outside your scope")
    if _aware(body.expires_at) <= datetime.now(UTC):
        raise ApiProblem(422, "invalid_request", "expires_at must be in the future")
    for field, value in body.match.items():
        values = value if isinstance(value, list) else [value]
        if (
            not field
            or len(field) > 255
            or "\x00" in field
            or any(isinstance(v, (dict, list)) or v is None or "\x00" in str(v) for v in values)
        ):
            raise ApiProblem(
                422, "invalid_request", f"match.{field}: a scalar value or a list of scalars"
            )
    sup = Suppression(
        rule_id=body.rule_id,
        match=body.match,
        reason=body.reason,
        unit=body.unit,
        expires_at=_aware(body.expires_at),
        created_by=user.name,
        created_at=datetime.now(UTC),
        hits=0,
    )
    session.add(sup)
    session.flush()
    record_audit(
        session,
        user.name,
        "suppression.create",
        "suppression",
        sup.id,
        rule_id=sup.rule_id,
        match=sup.match,
        reason=sup.reason,
        unit=sup.unit,
        expires_at=_aware(sup.expires_at).isoformat(),
    )
    return _sup_public(sup)


@suppressions_router.get(
    "/{suppression_id}", response_model=SuppressionPublic, responses=ERRORS, summary="One"
)
def get_suppression(
    suppression_id: SuppressionId, session: SessionDep, _user: CurrentUser, scope: AgencyScope
) -> dict[str, Any]:
    return _sup_public(_sup_scoped(session, scope, suppression_id))


@suppressions_router.patch(
    "/{suppression_id}",
    dependencies=EDIT,
    response_model=SuppressionPublic,
    responses=ERRORS,
    summary="Change the reason or expiry (an expiry in the past ends it)",
)
def update_suppression(
    suppression_id: SuppressionId,
    body: SuppressionUpdate,
    session: SessionDep,
    user: CurrentUser,
    scope: AgencyScope,
) -> dict[str, Any]:
    sup = _sup_scoped(session, scope, suppression_id)
    changes: dict[str, Any] = {}
    if body.reason is not None and body.reason != sup.reason:
        changes["reason"] = [sup.reason, body.reason]
        sup.reason = body.reason
    if body.expires_at is not None:
        new = _aware(body.expires_at)
        changes["expires_at"] = [_aware(sup.expires_at).isoformat(), new.isoformat()]
        sup.expires_at = new
    if not changes:
        raise ApiProblem(422, "invalid_request", "nothing to change: give reason or expires_at")
    record_audit(session, user.name, "suppression.update", "suppression", sup.id, **changes)
    return _sup_public(sup)


@suppressions_router.delete(
    "/{suppression_id}",
    status_code=204,
    responses=ERRORS,
    dependencies=EDIT,
    summary="Delete a suppression",
)
def delete_suppression(
    suppression_id: SuppressionId, session: SessionDep, user: CurrentUser, scope: AgencyScope
) -> Response:
    sup = _sup_scoped(session, scope, suppression_id)
    sup_id, rule_id = sup.id, sup.rule_id
    session.delete(sup)
    session.flush()  # write first (SQLite: holds the write lock before the audit append)
    record_audit(session, user.name, "suppression.delete", "suppression", sup_id, rule_id=rule_id)
    return Response(status_code=204)
