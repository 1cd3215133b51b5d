"""Evaluate every information system against the catalogue, store the statuses, read them back.

`evaluate()` runs the checks (`soc_api.compliance.checks`) for each system of the inventory
tables, upserts one `ControlStatusRow` per subject and control (`changed_at` moves only when
the status changes) and appends one `ComplianceSnapshotRow` per system (the trend).
Organisation-scope controls and layer 1 are judged once per owner unit (subject
`unit:<code>`) and shown with each of its systems. `report_from_db()` builds the
`ComplianceReport` from the stored rows — what the API serves — limited to a caller's scope.

Scheduling: `scheduled_evaluation` is the APScheduler job ("soc_api.compliance.evaluate:
scheduled_evaluation", every `settings.compliance_interval_seconds`, see
`compliance_scheduler`); `reevaluate` is what the inventory and attestation routes call
after a change ("on change").
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.tables import (
    AssetRow,
    ComplianceSnapshotRow,
    ControlStatusRow,
    PublicRangeRow,
    SystemAssetRow,
    SystemRow,
    UnitRow,
)
from soc_api.compliance.catalog import Catalogue, Control, applies, load_catalogue, why_not
from soc_api.compliance.checks import CheckContext, Outcome, Subject, SystemInfo, run_check, utc
from soc_api.compliance.model import (
    CatalogueInfo,
    ComplianceReport,
    ControlResult,
    LayerResult,
    LevelSummary,
    OverdueItem,
    ProvinceSummary,
    Summary,
    SystemCompliance,
    TrendPoint,
)
from socmon.errors import SocmonError
from socmon.logging import kv
from socmon.store import Store

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from detections.catalog import RuleCatalog
    from soc_api.deps import Scope
    from socmon.config import Settings
    from socmon.db import Database

log = logging.getLogger("socmon.compliance")

TREND_POINTS = 30
# (subject, control) -> (owner unit, status, stored evidence)
Results = dict[tuple[str, str], tuple[str, str, dict[str, Any]]]
JOB_REF = "soc_api.compliance.evaluate:scheduled_evaluation"
CHANGE_JOB_REF = "soc_api.compliance.evaluate:evaluate_if_inventory_changed"


def _load_systems(session: Session, codes: Iterable[str] | None = None) -> list[SystemInfo]:
    query = select(SystemRow).order_by(SystemRow.code)
    if codes is not None:
        query = query.where(SystemRow.code.in_(sorted(set(codes))))
    rows = list(session.scalars(query))
    if not rows:
        return []
    wanted = [r.code for r in rows]
    members: dict[str, list[AssetRow]] = defaultdict(list)
    for code, asset in session.execute(
        select(SystemAssetRow.system, AssetRow)
        .join(AssetRow, AssetRow.name == SystemAssetRow.asset)
        .where(SystemAssetRow.system.in_(wanted))
        .order_by(AssetRow.name)
    ):
        members[code].append(asset)
    ranges: dict[str, list[PublicRangeRow]] = defaultdict(list)
    for r in session.scalars(
        select(PublicRangeRow)
        .where(PublicRangeRow.system.in_(wanted))
        .order_by(PublicRangeRow.cidr)
    ):
        ranges[r.system].append(r)
    return [SystemInfo(row, members[row.code], ranges[row.code]) for row in rows]


def _stored(out: Outcome, enforced: bool) -> dict[str, Any]:
    return {
        "reason": out.reason,
        "reason_vi": out.reason_vi,
        "due": out.due.isoformat() if out.due else None,
        "overdue": out.overdue,
        "enforced": enforced,
        "data": out.evidence,
    }


def _not_applicable(control: Control, system: SystemRow) -> dict[str, Any]:
    en, vi = why_not(control, system)
    return {
        "reason": en,
        "reason_vi": vi,
        "due": None,
        "overdue": False,
        "enforced": control.confidence != "unverified",
        "data": {},
    }


def evaluate(
    session: Session,
    store: Store | None,
    catalogue: Catalogue,
    *,
    settings: Settings,
    now: datetime,
    catalog: RuleCatalog | None = None,
    systems: Sequence[str] | None = None,
    units: Sequence[str] | None = None,
) -> ComplianceReport:
    """Evaluate (all systems, or those named and those of `units`), persist, and return the
    report of the evaluated systems."""
    now = utc(now)
    ctx = CheckContext(
        session,
        store,
        catalogue,
        retention_days=settings.retention_days,
        now=now,
        catalog=catalog,
    )
    everything = systems is None and units is None
    if everything:
        targets = _load_systems(session)
        peers = targets
    else:
        codes = set(systems or ())
        if units:
            codes |= set(
                session.scalars(select(SystemRow.code).where(SystemRow.unit.in_(sorted(units))))
            )
        targets = _load_systems(session, codes)
        # organisation duties are judged over every system of the unit
        unit_codes = {t.unit for t in targets}
        peers = _load_systems(
            session, session.scalars(select(SystemRow.code).where(SystemRow.unit.in_(unit_codes)))
        )
    by_unit: dict[str, list[SystemInfo]] = defaultdict(list)
    for info in peers:
        by_unit[info.unit].append(info)

    results: Results = {}
    org_controls = [c for c in catalogue.all() if c.scope == "organisation"]
    for unit in sorted({t.unit for t in targets}):
        members = by_unit[unit]
        for control in org_controls:
            bound = [s for s in members if applies(control, s.row)]
            if not bound:
                continue
            subject = Subject(unit=unit, level=max(s.level for s in bound), systems=bound)
            out, enforced = run_check(ctx, control, subject)
            results[(subject.key, control.id)] = (unit, out.status, _stored(out, enforced))
    for info in targets:
        subject = Subject(unit=info.unit, level=info.level, system=info, systems=[info])
        for control in catalogue.all():
            if control.scope == "organisation":
                continue
            if not applies(control, info.row):
                results[(subject.key, control.id)] = (
                    info.unit,
                    "not_applicable",
                    _not_applicable(control, info.row),
                )
                continue
            out, enforced = run_check(ctx, control, subject)
            results[(subject.key, control.id)] = (info.unit, out.status, _stored(out, enforced))

    _upsert(session, results, catalogue.version, now)
    session.flush()
    report = report_from_db(session, catalogue, systems=[t.code for t in targets], now=now)
    for sc in report.systems:
        session.add(
            ComplianceSnapshotRow(
                system=sc.code,
                unit=sc.unit,
                evaluated_at=now,
                passing=sc.summary.passing,
                failing=sc.summary.failing,
                unknown=sc.summary.unknown,
                applicable=sc.summary.applicable,
                detail={"layers": {layer.id: layer.status for layer in sc.layers}},
            )
        )
        sc.trend.append(TrendPoint(at=now, passing_pct=sc.summary.passing_pct))
    session.flush()
    log.info(
        "compliance evaluated %s",
        kv(systems=len(report.systems), passing_pct=report.province.passing_pct),
    )
    return report


def _upsert(
    session: Session,
    results: Results,
    version: str,
    now: datetime,
) -> None:
    subjects = sorted({s for s, _ in results})
    existing = {
        (r.subject, r.control): r
        for r in session.scalars(
            select(ControlStatusRow).where(ControlStatusRow.subject.in_(subjects))
        )
    }
    for (subject, control), (unit, status, evidence) in results.items():
        row = existing.get((subject, control))
        if row is None:
            session.add(
                ControlStatusRow(
                    subject=subject,
                    unit=unit,
                    control=control,
                    status=status,
                    evidence=evidence,
                    catalogue_version=version,
                    evaluated_at=now,
                    changed_at=now,
                )
            )
            continue
        if row.status != status:
            row.status = status
            row.changed_at = now
        row.evidence = evidence
        row.catalogue_version = version
        row.evaluated_at = now


# -- reading the stored statuses ----------------------------------------------------------------


def _control_result(control: Control, row: ControlStatusRow | None) -> ControlResult:
    if row is None:
        ev: dict[str, Any] = {
            "reason": "not evaluated yet",
            "reason_vi": "chưa đánh giá",
            "enforced": control.confidence != "unverified",
        }
        status = "unknown"
    else:
        ev, status = row.evidence or {}, row.status
    due = ev.get("due")
    return ControlResult(
        id=control.id,
        family=control.family,
        title_vi=control.title_vi,
        title_en=control.title_en,
        evidence_kind=control.evidence,
        status=status,  # type: ignore[arg-type]
        regime=control.regime,
        confidence=control.confidence,
        enforced=bool(ev.get("enforced", control.confidence != "unverified")),
        reason=str(ev.get("reason", "")),
        reason_vi=str(ev.get("reason_vi", "")),
        evidence=dict(ev.get("data") or {}),
        due=date.fromisoformat(due) if due else None,
        overdue=bool(ev.get("overdue", False)),
        source=control.source,
    )


def _summary(controls: Sequence[ControlResult]) -> Summary:
    applicable = [c for c in controls if c.status != "not_applicable"]
    passing = sum(1 for c in applicable if c.status == "pass")
    failing = sum(1 for c in applicable if c.status == "fail")
    return Summary(
        applicable=len(applicable),
        passing=passing,
        failing=failing,
        unknown=len(applicable) - passing - failing,
        passing_pct=round(100 * passing / len(applicable), 1) if applicable else 0.0,
    )


def _pct(passing: int, applicable: int) -> float:
    return round(100 * passing / applicable, 1) if applicable else 0.0


def report_from_db(
    session: Session,
    catalogue: Catalogue,
    *,
    scope: Scope | None = None,
    systems: Sequence[str] | None = None,
    now: datetime | None = None,
) -> ComplianceReport:
    """The report of the stored statuses: every system in `scope` (all without one), or
    only `systems`. Never-evaluated controls are `unknown` ("not evaluated yet")."""
    now = utc(now or datetime.now(UTC))
    query = select(SystemRow).order_by(SystemRow.level.desc(), SystemRow.code)
    if scope is not None:
        query = query.where(scope.filter(SystemRow.unit, SystemRow.state_secret))
    if systems is not None:
        query = query.where(SystemRow.code.in_(sorted(set(systems))))
    rows = list(session.scalars(query))
    unit_codes = sorted({r.unit for r in rows})
    unit_names = {
        u.code: u.name for u in session.scalars(select(UnitRow).where(UnitRow.code.in_(unit_codes)))
    }
    subjects = [f"system:{r.code}" for r in rows] + [f"unit:{u}" for u in unit_codes]
    stored: dict[tuple[str, str], ControlStatusRow] = {
        (s.subject, s.control): s
        for s in session.scalars(
            select(ControlStatusRow).where(ControlStatusRow.subject.in_(subjects))
        )
    }
    trends: dict[str, list[TrendPoint]] = defaultdict(list)
    if rows:
        snaps = session.scalars(
            select(ComplianceSnapshotRow)
            .where(ComplianceSnapshotRow.system.in_([r.code for r in rows]))
            .order_by(ComplianceSnapshotRow.evaluated_at.desc(), ComplianceSnapshotRow.id.desc())
        )
        for snap in snaps:
            points = trends[snap.system]
            if len(points) < TREND_POINTS:
                points.append(
                    TrendPoint(
                        at=utc(snap.evaluated_at), passing_pct=_pct(snap.passing, snap.applicable)
                    )
                )
    out: list[SystemCompliance] = []
    for row in rows:
        subject = f"system:{row.code}"
        unit_subject = f"unit:{row.unit}"
        controls: list[ControlResult] = []
        layers: list[LayerResult] = []
        evaluated: list[datetime] = []
        for control in catalogue.all():
            key = unit_subject if control.scope == "organisation" else subject
            status_row = stored.get((key, control.id))
            if not applies(control, row):
                result = ControlResult(
                    **{
                        **_control_result(control, None).model_dump(),
                        "status": "not_applicable",
                        "reason": why_not(control, row)[0],
                        "reason_vi": why_not(control, row)[1],
                    }
                )
            else:
                result = _control_result(control, status_row)
            if status_row is not None:
                evaluated.append(utc(status_row.evaluated_at))
            if control.is_layer:
                layers.append(
                    LayerResult(
                        id=control.id,
                        layer=control.layer,  # type: ignore[arg-type]
                        title_vi=control.title_vi,
                        title_en=control.title_en,
                        required=applies(control, row),
                        status=result.status,
                        reason=result.reason,
                        reason_vi=result.reason_vi,
                        evidence=result.evidence,
                    )
                )
            else:
                controls.append(result)
        overdue = [
            OverdueItem(control=c.id, title_vi=c.title_vi, title_en=c.title_en, since=c.due)
            for c in controls
            if c.overdue and c.status != "not_applicable"
        ]
        trend = list(reversed(trends.get(row.code, [])))
        out.append(
            SystemCompliance(
                code=row.code,
                name=row.name,
                unit=row.unit,
                unit_name=unit_names.get(row.unit, row.unit),
                level=row.level,
                regime=row.regime,
                dossier_status=row.dossier_status,
                decision_number=row.decision_number,
                decision_date=row.decision_date,
                state_secret=row.state_secret,
                layers=layers,
                controls=controls,
                summary=_summary(controls),
                overdue=overdue,
                trend=trend,
                evaluated_at=max(evaluated) if evaluated else now,
            )
        )
    return ComplianceReport(
        generated_at=now,
        catalogue=CatalogueInfo(
            version=catalogue.version, as_of=catalogue.as_of, controls=len(catalogue.controls)
        ),
        province=province_summary(out, catalogue),
        systems=out,
    )


def province_summary(systems: Sequence[SystemCompliance], catalogue: Catalogue) -> ProvinceSummary:
    """Totals over the systems ("level-3 systems: x % of controls passing")."""
    by_level: dict[int, list[SystemCompliance]] = defaultdict(list)
    for s in systems:
        by_level[s.level].append(s)
    passing = sum(s.summary.passing for s in systems)
    applicable = sum(s.summary.applicable for s in systems)
    return ProvinceSummary(
        systems=len(systems),
        approved=sum(1 for s in systems if s.dossier_status == "approved"),
        passing_pct=_pct(passing, applicable),
        overdue=sum(len(s.overdue) for s in systems),
        by_level=[
            LevelSummary(
                level=level,
                systems=len(group),
                approved=sum(1 for s in group if s.dossier_status == "approved"),
                passing_pct=_pct(
                    sum(s.summary.passing for s in group), sum(s.summary.applicable for s in group)
                ),
            )
            for level, group in sorted(by_level.items())
        ],
        layers_passing={
            layer.id: sum(
                1 for s in systems for lr in s.layers if lr.id == layer.id and lr.status == "pass"
            )
            for layer in catalogue.layers
        },
    )


# -- scheduling and "on change" ------------------------------------------------------------------


def reevaluate(
    session: Session,
    store: Store | None,
    *,
    settings: Settings,
    systems: Sequence[str] = (),
    units: Sequence[str] = (),
    catalog: RuleCatalog | None = None,
    now: datetime | None = None,
) -> ComplianceReport | None:
    """Re-evaluate the systems named and every system of `units` after a change (inventory
    edit, attestation, record). None when the catalogue is not available (logged)."""
    if not systems and not units:
        return None
    try:
        catalogue = load_catalogue(settings.compliance_catalogue)
    except SocmonError as e:
        log.warning("compliance not re-evaluated %s", kv(error=e))
        return None
    return evaluate(
        session,
        store,
        catalogue,
        settings=settings,
        now=now or datetime.now(UTC),
        catalog=catalog,
        systems=list(systems),
        units=list(units),
    )


def scheduled_evaluation(
    db: Database, store: Store | None, settings: Settings, catalog: RuleCatalog | None = None
) -> None:
    """The scheduled job: evaluate every system (errors logged, never raised)."""
    try:
        catalogue = load_catalogue(settings.compliance_catalogue)
        with db.session() as session:
            evaluate(
                session,
                store,
                catalogue,
                settings=settings,
                now=datetime.now(UTC),
                catalog=catalog,
            )
    except SocmonError as e:
        log.warning("compliance evaluation failed %s", kv(error=e))
    except Exception:
        log.exception("compliance evaluation failed")


_last_inventory: dict[str, str] = {}


def evaluate_if_inventory_changed(
    db: Database, store: Store | None, settings: Settings, catalog: RuleCatalog | None = None
) -> bool:
    """The "on change" job: evaluate everything when the inventory changed since the last
    look (a system's level, members, ranges, an asset's log sources — edited through the API
    or imported). Attestations and records re-evaluate their systems at once (routes)."""
    from inventory.store import fingerprint

    key = str(db.engine.url)
    try:
        with db.session() as session:
            now = fingerprint(session)
    except Exception:
        log.exception("inventory fingerprint failed")
        return False
    before = _last_inventory.get(key)
    _last_inventory[key] = now
    if before is None or before == now:
        return False
    scheduled_evaluation(db, store, settings, catalog)
    return True


def compliance_scheduler(
    db: Database, store: Store | None, settings: Settings, catalog: RuleCatalog | None = None
) -> BackgroundScheduler:
    """A (not started) scheduler running `scheduled_evaluation` every
    `settings.compliance_interval_seconds`, first at once, and every minute when the
    inventory changed (`evaluate_if_inventory_changed`)."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        JOB_REF,
        IntervalTrigger(seconds=settings.compliance_interval_seconds, timezone=UTC),
        args=[db, store, settings, catalog],
        id="compliance",
        name="compliance evaluation",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        CHANGE_JOB_REF,
        IntervalTrigger(seconds=60, timezone=UTC),
        args=[db, store, settings, catalog],
        id="compliance-on-change",
        name="compliance evaluation after an inventory change",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
    return scheduler
