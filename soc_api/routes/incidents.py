"""Incidents: list and detail, scoped to the caller's units."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, select

from soc_api.deps import AgencyScope, CurrentUser, SessionDep
from soc_api.errors import ApiProblem, ErrorResponse
from soc_api.incidents import parse_time as as_utc
from soc_api.labels import INCIDENT_CATEGORY, INCIDENT_STATUS, RESPONSE_PATH, SEVERITY, label
from soc_api.models import Incident, IncidentAlert

router = APIRouter(
    prefix="/incidents", tags=["incidents"], responses={401: {"model": ErrorResponse}}
)


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
    group_fields: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    alert_count: int
    created_at: datetime
    updated_at: datetime


class IncidentsPublic(BaseModel):
    data: list[IncidentPublic]
    count: int


class AlertRef(BaseModel):
    alert_id: str
    event_id: str
    rule_id: str
    ts: datetime
    fields: dict[str, Any]


class IncidentDetail(IncidentPublic):
    alerts: list[AlertRef]


def to_public(inc: Incident) -> dict[str, Any]:
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
        "group_fields": inc.group_fields,
        "first_seen": as_utc(inc.first_seen),
        "last_seen": as_utc(inc.last_seen),
        "alert_count": inc.alert_count,
        "created_at": as_utc(inc.created_at),
        "updated_at": as_utc(inc.updated_at),
    }


@router.get("", response_model=IncidentsPublic, summary="List incidents (newest first)")
def list_incidents(
    session: SessionDep,
    _user: CurrentUser,
    scope: AgencyScope,
    status: Annotated[str | None, Query(description="filter by status code")] = None,
    severity: Annotated[str | None, Query()] = None,
    sort: Annotated[Literal["-last_seen", "last_seen", "-id", "id"], Query()] = "-last_seen",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    if status is not None and status not in INCIDENT_STATUS:
        raise ApiProblem(422, "invalid_request", f"unknown status {status!r}")
    where = [scope.filter(Incident.unit)]
    if status:
        where.append(Incident.status == status)
    if severity:
        where.append(Incident.severity == severity)
    column = Incident.last_seen if sort.endswith("last_seen") else Incident.id
    order = column.desc() if sort.startswith("-") else column.asc()
    count = session.scalar(select(func.count()).select_from(Incident).where(*where)) or 0
    rows = session.scalars(
        select(Incident)
        .where(*where)
        .order_by(order, Incident.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return {"data": [to_public(r) for r in rows], "count": count}


@router.get(
    "/{incident_id}", response_model=IncidentDetail, responses={404: {"model": ErrorResponse}}
)
def get_incident(
    incident_id: int, session: SessionDep, _user: CurrentUser, scope: AgencyScope
) -> dict[str, Any]:
    inc = session.scalars(
        select(Incident).where(Incident.id == incident_id, scope.filter(Incident.unit))
    ).first()
    if inc is None:
        raise ApiProblem(404, "not_found", f"incident {incident_id} not found")
    alerts = session.scalars(
        select(IncidentAlert)
        .where(IncidentAlert.incident_id == inc.id)
        .order_by(IncidentAlert.ts)
        .limit(1000)
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
    return out
