"""Compliance of information systems: statuses, the catalogue, attestations and records.

| Route                                   | admin | manager | analyst | provider-analyst | sysadmin | drill |
|-----------------------------------------|-------|---------|---------|------------------|----------|-------|
| summary, systems, controls (read)       | yes   | yes     | yes     | yes              | yes      | –     |
| attestations, records (read)            | yes   | yes     | yes     | yes              | yes      | –     |
| attestations, records (add, revoke)     | yes   | yes     | –       | –                | –        | –     |
| evaluate now                            | yes   | yes     | –       | –                | –        | –     |

Reasons: managers answer for their systems' compliance and hold the documents (they attest
and record drills, scans, reports); analysts and the provider's analysts read it because
failing live checks (a silent source, a missing sensor) are SOC work; sysadmins read it
because most live checks fail on log gaps they fix; the drill team scores the SOC, not the
systems. What everyone sees is limited by `AgencyScope`: systems, attestations and records
of the caller's units only, never a state-secret system for a provider analyst; an object
outside the scope is a 404. Every change is audited (hash chain) and re-evaluates the
systems it concerns at once ("on change"); the scheduler re-evaluates everything
periodically (`soc_api.compliance.evaluate`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.tables import AttestationRow, RecordRow, SystemRow, UnitRow
from inventory.vocab import RECORD_KINDS
from soc_api.access_policy import COMPLIANCE_EDIT, COMPLIANCE_READ
from soc_api.audit import record as audit
from soc_api.compliance.catalog import Catalogue, load_catalogue
from soc_api.compliance.evaluate import evaluate, reevaluate, report_from_db
from soc_api.compliance.model import (
    CatalogueInfo,
    LayerResult,
    OverdueItem,
    ProvinceSummary,
    Summary,
    SystemCompliance,
    TrendPoint,
)
from soc_api.deps import AgencyScope, CurrentUser, Scope, SessionDep, WriteRoute, require_roles
from soc_api.errors import ApiProblem, ErrorResponse
from socmon.config import Settings, get_settings

MAX_ID = 2**31 - 1
NO_NUL = r"^[^\x00]*$"
Code = Annotated[str, PathParam(max_length=64, pattern=NO_NUL, description="system code")]
AttestationId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="attestation id")]
ShortText = Annotated[str, Field(min_length=1, max_length=300, pattern=NO_NUL)]
UnitCode = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]

router = APIRouter(
    route_class=WriteRoute,
    prefix="/compliance",
    tags=["compliance"],
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}},
    dependencies=[Depends(require_roles(*COMPLIANCE_READ))],
)
EDIT = [Depends(require_roles(*COMPLIANCE_EDIT))]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
}


# -- models ---------------------------------------------------------------------------------


class SummaryPublic(BaseModel):
    generated_at: datetime
    catalogue: CatalogueInfo
    province: ProvinceSummary


class SystemBrief(BaseModel):
    """A system's compliance without the per-control list (see `/systems/{code}`)."""

    code: str
    name: str
    unit: str
    unit_name: str
    level: int
    regime: str
    dossier_status: str
    decision_number: str | None = None
    decision_date: date | None = None
    state_secret: bool = False
    layers: list[LayerResult]
    summary: Summary
    overdue: list[OverdueItem]
    trend: list[TrendPoint]
    evaluated_at: datetime


class SystemsPublic(BaseModel):
    data: list[SystemBrief]
    count: int


class ControlPublic(BaseModel):
    id: str
    layer: int = Field(description="1-4 for one of the four layers, 0 for a control")
    family: str
    title_vi: str
    title_en: str
    evidence: str
    min_level: int
    max_level: int | None
    scope: str
    regime: str
    confidence: str
    enforced: bool = Field(description="false for `confidence: unverified` (shown, not enforced)")
    live_check: str | None
    attested_doc: str | None
    params: dict[str, Any]
    source: str


class ControlsPublic(BaseModel):
    version: str
    as_of: str
    data: list[ControlPublic]
    count: int


class AttestationCreate(BaseModel):
    control: str = Field(min_length=1, max_length=120, pattern=NO_NUL)
    system: str | None = Field(
        default=None,
        max_length=64,
        pattern=NO_NUL,
        description="the system (system-scope controls); null for an organisation duty",
    )
    unit: UnitCode | None = Field(
        default=None, description="the owner unit (organisation duties); defaults to the system's"
    )
    document_ref: ShortText
    attester: Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
    attested_on: date
    expires_on: date | None = None
    detail: dict[str, Any] = Field(
        default_factory=dict,
        description="what the control needs beyond the document (provider, assessor...)",
    )


class AttestationPublic(BaseModel):
    id: int
    control: str
    system: str | None
    unit: str
    document_ref: str
    attester: str
    attested_on: date
    expires_on: date | None
    expired: bool
    detail: dict[str, Any]
    created_by: str
    created_at: datetime
    revoked: bool


class AttestationsPublic(BaseModel):
    data: list[AttestationPublic]
    count: int


class RecordCreate(BaseModel):
    kind: str = Field(min_length=1, max_length=32, description="drill, scan, pentest, ...")
    system: str | None = Field(default=None, max_length=64, pattern=NO_NUL)
    unit: UnitCode | None = None
    occurred_at: datetime
    summary: str = Field(min_length=1, max_length=5000, pattern=NO_NUL)
    detail: dict[str, Any] = Field(default_factory=dict)


class RecordPublic(BaseModel):
    id: int
    kind: str
    system: str | None
    unit: str
    occurred_at: datetime
    summary: str
    detail: dict[str, Any]
    created_by: str
    created_at: datetime


class RecordsPublic(BaseModel):
    data: list[RecordPublic]
    count: int


# -- helpers --------------------------------------------------------------------------------


def _settings(request: Request) -> Settings:
    settings = getattr(request.app.state, "settings", None)
    return settings if isinstance(settings, Settings) else get_settings()


def _catalogue(request: Request) -> Catalogue:
    return load_catalogue(_settings(request).compliance_catalogue)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _system(session: Session, scope: Scope, code: str) -> SystemRow:
    row = session.get(SystemRow, code)
    if row is None or not scope.allows(row.unit, state_secret=row.state_secret):
        raise ApiProblem(404, "not_found", f"system {code} not found")
    return row


def _hidden_systems(session: Session, scope: Scope) -> set[str]:
    """Codes of systems the caller may not see though their unit is in scope."""
    if not scope.hide_state_secret:
        return set()
    return set(session.scalars(select(SystemRow.code).where(SystemRow.state_secret.is_(True))))


def _attestation_public(row: AttestationRow, today: date) -> dict[str, Any]:
    return {
        "id": row.id,
        "control": row.control,
        "system": row.system,
        "unit": row.unit,
        "document_ref": row.document_ref,
        "attester": row.attester,
        "attested_on": row.attested_on,
        "expires_on": row.expires_on,
        "expired": row.expires_on is not None and row.expires_on < today,
        "detail": row.detail or {},
        "created_by": row.created_by,
        "created_at": _utc(row.created_at),
        "revoked": row.revoked,
    }


def _record_public(row: RecordRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "system": row.system,
        "unit": row.unit,
        "occurred_at": _utc(row.occurred_at),
        "summary": row.summary,
        "detail": row.detail or {},
        "created_by": row.created_by,
        "created_at": _utc(row.created_at),
    }


def _subject(
    session: Session, scope: Scope, system: str | None, unit: str | None
) -> tuple[str | None, str]:
    """(system, unit) of a new attestation or record, checked against the caller's scope."""
    if system is not None:
        row = _system(session, scope, system)
        if unit is not None and unit != row.unit:
            raise ApiProblem(
                422, "invalid_request", f"system {system} belongs to unit {row.unit}, not {unit}"
            )
        return row.code, row.unit
    if unit is None:
        raise ApiProblem(422, "invalid_request", "give a system or, for a unit's duty, a unit")
    if session.get(UnitRow, unit) is None or not scope.allows(unit):
        raise ApiProblem(404, "not_found", f"unit {unit} not found")
    return None, unit


def _on_change(request: Request, session: Session, system: str | None, unit: str) -> None:
    reevaluate(
        session,
        request.app.state.store,
        settings=_settings(request),
        systems=[system] if system else [],
        units=[] if system else [unit],
        catalog=getattr(request.app.state, "catalog", None),
    )


def _brief(sc: SystemCompliance) -> dict[str, Any]:
    return sc.model_dump(exclude={"controls"})


# -- statuses -------------------------------------------------------------------------------


@router.get("/summary", response_model=SummaryPublic, summary="Province summary")
def get_summary(
    request: Request, session: SessionDep, _user: CurrentUser, scope: AgencyScope
) -> dict[str, Any]:
    report = report_from_db(session, _catalogue(request), scope=scope)
    return {
        "generated_at": report.generated_at,
        "catalogue": report.catalogue,
        "province": report.province,
    }


@router.get("/systems", response_model=SystemsPublic, summary="Systems: level, layers, % passing")
def list_systems(
    request: Request,
    session: SessionDep,
    _user: CurrentUser,
    scope: AgencyScope,
    level: Annotated[int | None, Query(ge=1, le=5)] = None,
    unit: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
) -> dict[str, Any]:
    report = report_from_db(session, _catalogue(request), scope=scope)
    data = [
        _brief(s)
        for s in report.systems
        if (level is None or s.level == level) and (unit is None or s.unit == unit)
    ]
    return {"data": data, "count": len(data)}


@router.get(
    "/systems/{code}",
    response_model=SystemCompliance,
    responses=ERRORS,
    summary="One system: layers and every control with its evidence",
)
def get_system(
    request: Request, session: SessionDep, _user: CurrentUser, scope: AgencyScope, code: Code
) -> SystemCompliance:
    _system(session, scope, code)
    report = report_from_db(session, _catalogue(request), scope=scope, systems=[code])
    if not report.systems:
        raise ApiProblem(404, "not_found", f"system {code} not found")
    return report.systems[0]


REPORT_TYPES = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "json": "application/json",
}


@router.get(
    "/report",
    summary="The manager report of the caller's systems (HTML, PDF or JSON; vi or en)",
    response_class=Response,
    responses={
        200: {
            "description": "the rendered report",
            "content": {
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
def get_report(
    request: Request,
    session: SessionDep,
    _user: CurrentUser,
    scope: AgencyScope,
    format: Annotated[Literal["html", "pdf", "json"], Query()] = "html",
    lang: Annotated[Literal["vi", "en"], Query()] = "vi",
) -> Response:
    """What `socmon compliance report` writes, limited to the caller's units (never a
    state-secret system for a provider analyst): the page a manager opens in a browser."""
    from soc_api.compliance.report import render

    report = report_from_db(session, _catalogue(request), scope=scope)
    headers = {}
    if format == "pdf":
        headers["Content-Disposition"] = f'attachment; filename="socmon-compliance-{lang}.pdf"'
    return Response(render(report, format, lang), media_type=REPORT_TYPES[format], headers=headers)


@router.get("/controls", response_model=ControlsPublic, summary="The control catalogue")
def list_controls(
    request: Request,
    _user: CurrentUser,
    regime: Annotated[str | None, Query(pattern="^(nd85|nd331|both)$")] = None,
    level: Annotated[int | None, Query(ge=1, le=5)] = None,
) -> dict[str, Any]:
    catalogue = _catalogue(request)
    data = []
    for c in catalogue.all():
        if regime is not None and c.regime not in (regime, "both"):
            continue
        if level is not None and not (
            c.min_level <= level and (c.max_level is None or level <= c.max_level)
        ):
            continue
        data.append(
            {
                "id": c.id,
                "layer": c.layer,
                "family": c.family,
                "title_vi": c.title_vi,
                "title_en": c.title_en,
                "evidence": c.evidence,
                "min_level": c.min_level,
                "max_level": c.max_level,
                "scope": c.scope,
                "regime": c.regime,
                "confidence": c.confidence,
                "enforced": c.confidence != "unverified",
                "live_check": c.live_check,
                "attested_doc": c.attested_doc,
                "params": c.params,
                "source": c.source,
            }
        )
    return {
        "version": catalogue.version,
        "as_of": catalogue.as_of,
        "data": data,
        "count": len(data),
    }


@router.post(
    "/evaluate",
    response_model=SummaryPublic,
    dependencies=EDIT,
    summary="Re-evaluate now (the caller's systems)",
)
def evaluate_now(
    request: Request, session: SessionDep, user: CurrentUser, scope: AgencyScope
) -> dict[str, Any]:
    catalogue = _catalogue(request)
    codes = None
    if not scope.everything or scope.hide_state_secret:
        codes = list(
            session.scalars(
                select(SystemRow.code).where(scope.filter(SystemRow.unit, SystemRow.state_secret))
            )
        )
    evaluate(
        session,
        request.app.state.store,
        catalogue,
        settings=_settings(request),
        now=datetime.now(UTC),
        catalog=getattr(request.app.state, "catalog", None),
        systems=codes,
    )
    audit(session, user.name, "compliance.evaluate", "compliance", "all", systems=codes)
    report = report_from_db(session, catalogue, scope=scope)
    return {
        "generated_at": report.generated_at,
        "catalogue": report.catalogue,
        "province": report.province,
    }


# -- attestations ---------------------------------------------------------------------------


@router.get("/attestations", response_model=AttestationsPublic, summary="Attested evidence")
def list_attestations(
    session: SessionDep,
    _user: CurrentUser,
    scope: AgencyScope,
    system: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    control: Annotated[str | None, Query(max_length=120, pattern=NO_NUL)] = None,
    include_revoked: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    where = [scope.filter(AttestationRow.unit)]
    if system is not None:
        where.append(AttestationRow.system == system)
    if control is not None:
        where.append(AttestationRow.control == control)
    if not include_revoked:
        where.append(AttestationRow.revoked.is_(False))
    hidden = _hidden_systems(session, scope)
    rows = [
        r
        for r in session.scalars(
            select(AttestationRow)
            .where(*where)
            .order_by(AttestationRow.attested_on.desc(), AttestationRow.id.desc())
        )
        if r.system not in hidden
    ]
    today = datetime.now(UTC).date()
    return {"data": [_attestation_public(r, today) for r in rows[:limit]], "count": len(rows)}


@router.post(
    "/attestations",
    response_model=AttestationPublic,
    status_code=201,
    dependencies=EDIT,
    responses=ERRORS,
    summary="Attest a control (document, attester, dates)",
)
def create_attestation(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    scope: AgencyScope,
    body: AttestationCreate,
) -> dict[str, Any]:
    catalogue = _catalogue(request)
    control = catalogue.get(body.control)
    if control is None:
        raise ApiProblem(422, "invalid_request", f"unknown control id {body.control!r}")
    if control.scope == "organisation" and body.system is not None:
        raise ApiProblem(
            422,
            "invalid_request",
            f"{control.id} is a duty of the owner unit: give `unit`, not `system`",
        )
    if control.scope == "system" and body.system is None:
        raise ApiProblem(
            422, "invalid_request", f"{control.id} is attested per system: give `system`"
        )
    if body.expires_on is not None and body.expires_on < body.attested_on:
        raise ApiProblem(422, "invalid_request", "expires_on is before attested_on")
    today = datetime.now(UTC).date()
    if body.attested_on > today + timedelta(days=1):
        raise ApiProblem(422, "invalid_request", "attested_on is in the future")
    system, unit = _subject(session, scope, body.system, body.unit)
    row = AttestationRow(
        control=control.id,
        system=system,
        unit=unit,
        document_ref=body.document_ref,
        attester=body.attester,
        attested_on=body.attested_on,
        expires_on=body.expires_on,
        detail=body.detail,
        created_by=user.name,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    audit(
        session,
        user.name,
        "compliance.attest",
        "attestation",
        row.id,
        control=control.id,
        system=system,
        unit=unit,
        document_ref=body.document_ref,
        attested_on=body.attested_on.isoformat(),
        expires_on=body.expires_on.isoformat() if body.expires_on else None,
    )
    _on_change(request, session, system, unit)
    return _attestation_public(row, today)


@router.delete(
    "/attestations/{attestation_id}",
    response_model=AttestationPublic,
    dependencies=EDIT,
    responses=ERRORS,
    summary="Revoke an attestation (kept, marked revoked)",
)
def revoke_attestation(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    scope: AgencyScope,
    attestation_id: AttestationId,
) -> dict[str, Any]:
    row = session.get(AttestationRow, attestation_id)
    if (
        row is None
        or not scope.allows(row.unit)
        or (row.system is not None and row.system in _hidden_systems(session, scope))
    ):
        raise ApiProblem(404, "not_found", f"attestation {attestation_id} not found")
    if row.revoked:
        raise ApiProblem(409, "conflict", f"attestation {attestation_id} is already revoked")
    row.revoked = True
    audit(
        session,
        user.name,
        "compliance.revoke",
        "attestation",
        row.id,
        control=row.control,
        system=row.system,
        unit=row.unit,
    )
    session.flush()
    _on_change(request, session, row.system, row.unit)
    return _attestation_public(row, datetime.now(UTC).date())


# -- records --------------------------------------------------------------------------------


@router.get("/records", response_model=RecordsPublic, summary="Drills, scans, reports, heartbeats")
def list_records(
    session: SessionDep,
    _user: CurrentUser,
    scope: AgencyScope,
    kind: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
    system: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    where = [scope.filter(RecordRow.unit)]
    if kind is not None:
        where.append(RecordRow.kind == kind)
    if system is not None:
        where.append(RecordRow.system == system)
    hidden = _hidden_systems(session, scope)
    rows = [
        r
        for r in session.scalars(
            select(RecordRow)
            .where(*where)
            .order_by(RecordRow.occurred_at.desc(), RecordRow.id.desc())
        )
        if r.system not in hidden
    ]
    return {"data": [_record_public(r) for r in rows[:limit]], "count": len(rows)}


@router.post(
    "/records",
    response_model=RecordPublic,
    status_code=201,
    dependencies=EDIT,
    responses=ERRORS,
    summary="Record a drill held, a scan run, a report sent, a connector heartbeat",
)
def create_record(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    scope: AgencyScope,
    body: RecordCreate,
) -> dict[str, Any]:
    if body.kind not in RECORD_KINDS:
        raise ApiProblem(
            422,
            "invalid_request",
            f"unknown record kind {body.kind!r} (one of {', '.join(sorted(RECORD_KINDS))})",
        )
    occurred = _utc(body.occurred_at)
    now = datetime.now(UTC)
    if occurred > now + timedelta(minutes=5):
        raise ApiProblem(422, "invalid_request", "occurred_at is in the future")
    system, unit = _subject(session, scope, body.system, body.unit)
    row = RecordRow(
        kind=body.kind,
        system=system,
        unit=unit,
        occurred_at=occurred,
        summary=body.summary,
        detail=body.detail,
        created_by=user.name,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit(
        session,
        user.name,
        "compliance.record",
        "compliance_record",
        row.id,
        kind=body.kind,
        system=system,
        unit=unit,
        occurred_at=occurred.isoformat(),
    )
    _on_change(request, session, system, unit)
    return _record_public(row)
