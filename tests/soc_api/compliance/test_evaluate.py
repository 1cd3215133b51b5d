"""Evaluation: statuses persisted per subject and control, snapshots, the report's shape and
scope, the scheduled job and the re-evaluation on change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from inventory.tables import ComplianceSnapshotRow, ControlStatusRow, SystemRow
from soc_api.compliance.checks import utc
from soc_api.compliance.evaluate import (
    CHANGE_JOB_REF,
    JOB_REF,
    compliance_scheduler,
    evaluate,
    evaluate_if_inventory_changed,
    reevaluate,
    report_from_db,
    scheduled_evaluation,
)
from soc_api.compliance.model import ComplianceReport
from soc_api.deps import Scope
from socmon.config import Settings
from socmon.db import Database
from socmon.store import Store
from tests.soc_api.compliance.world import NOW, A, B, add_world, all_sources_live, catalogue, record

pytestmark = pytest.mark.integration

POLICY = "TCVN11930.MGMT.POLICY"


@pytest.fixture
def world(db: Database) -> Database:
    with db.session() as s:
        add_world(s)
    return db


def test_statuses_snapshots_and_changed_at(
    world: Database, store: Store, settings: Settings
) -> None:
    cat = catalogue()
    with world.session() as s:
        report = evaluate(s, store, cat, settings=settings, now=NOW)
    assert [sc.code for sc in report.systems] == ["DVC", "QLVB-MAT", "YTE"]  # level, code
    org = [c for c in cat.all() if c.scope == "organisation"]
    system_scope = [c for c in cat.all() if c.scope == "system"]
    with world.session() as s:
        subjects = dict(
            s.execute(
                select(ControlStatusRow.subject, func.count()).group_by(ControlStatusRow.subject)
            ).all()
        )
        assert subjects["system:DVC"] == len(system_scope)
        # organisation duties: one row per unit, only those binding one of its systems
        assert 0 < subjects[f"unit:{A}"] <= len(org)
        assert subjects[f"unit:{B}"] < subjects[f"unit:{A}"]  # level-2 nd331 only
        row = s.scalars(
            select(ControlStatusRow).where(
                ControlStatusRow.subject == "system:DVC",
                ControlStatusRow.control == "TT31.MON.MIN_INPUTS",
            )
        ).one()
        assert row.status == "fail" and row.catalogue_version == cat.version and row.unit == A
        assert row.evidence["reason"] and row.evidence["reason_vi"]
        first_change = row.changed_at

    # same data an hour later: evaluated again, status unchanged, changed_at kept
    with world.session() as s:
        evaluate(s, store, cat, settings=settings, now=NOW + timedelta(hours=1))
    all_sources_live(store, NOW + timedelta(hours=2))
    with world.session() as s:
        evaluate(s, store, cat, settings=settings, now=NOW + timedelta(hours=2))
        rows = s.scalars(
            select(ControlStatusRow).where(
                ControlStatusRow.subject == "system:DVC",
                ControlStatusRow.control.in_(["TT31.MON.MIN_INPUTS", POLICY]),
            )
        ).all()
        by_control = {r.control: r for r in rows}
        assert by_control["TT31.MON.MIN_INPUTS"].status == "pass"
        assert utc(by_control["TT31.MON.MIN_INPUTS"].changed_at) == NOW + timedelta(hours=2)
        assert utc(by_control[POLICY].changed_at) == utc(first_change)
        assert utc(by_control[POLICY].evaluated_at) == NOW + timedelta(hours=2)
        snaps = s.scalar(select(func.count()).where(ComplianceSnapshotRow.system == "DVC"))
        assert snaps == 3
    with world.session() as s:
        dvc = report_from_db(s, cat, systems=["DVC"]).systems[0]
    assert [p.at for p in dvc.trend] == [NOW + timedelta(hours=h) for h in (0, 1, 2)]
    assert dvc.trend[-1].passing_pct > dvc.trend[0].passing_pct


def test_report_shape_layers_and_province(
    world: Database, store: Store, settings: Settings
) -> None:
    cat = catalogue()
    with world.session() as s:
        record(s, "connector_heartbeat", NOW - timedelta(hours=1), system="YTE", unit=B)
        report = evaluate(s, store, cat, settings=settings, now=NOW)
    again = ComplianceReport.model_validate_json(report.model_dump_json())
    assert again == report
    by_code = {sc.code: sc for sc in report.systems}
    dvc, yte = by_code["DVC"], by_code["YTE"]
    assert [lr.layer for lr in dvc.layers] == [1, 2, 3, 4]
    assert all(lr.required for lr in dvc.layers)
    assert [lr.required for lr in yte.layers] == [True, False, False, True]
    assert by_code["YTE"].layers[3].status == "pass"  # heartbeat, no public ranges
    assert report.province.layers_passing["LAYER4.NATIONAL_MONITORING_LINK"] == 1
    # every catalogue control is listed; those not binding the system are not_applicable
    assert len(dvc.controls) == len(cat.controls)
    na = {c.id: c for c in yte.controls if c.status == "not_applicable"}
    assert "levels 3+" in na["ND85.ART20.SYSTEM_ASSESSMENT"].reason  # by level
    assert "nd331" in na[POLICY].reason  # by regime
    for sc in report.systems:
        s_ = sc.summary
        assert s_.applicable == s_.passing + s_.failing + s_.unknown
        assert s_.applicable == sum(1 for c in sc.controls if c.status != "not_applicable")
        assert all(c.reason and c.reason_vi for c in sc.controls)
        assert all(c.status != "fail" for c in sc.controls if not c.enforced)
    assert dvc.summary.failing > 0 and dvc.level == 3 and dvc.dossier_status == "approved"
    prov = report.province
    assert prov.systems == 3 and prov.approved == 2
    assert [(lv.level, lv.systems) for lv in prov.by_level] == [(2, 1), (3, 2)]
    assert prov.overdue == sum(len(sc.overdue) for sc in report.systems)


def test_report_scope(world: Database, store: Store, settings: Settings) -> None:
    cat = catalogue()
    with world.session() as s:
        evaluate(s, store, cat, settings=settings, now=NOW)
        only_b = report_from_db(s, cat, scope=Scope(units=frozenset({B}), everything=False))
        provider = report_from_db(
            s, cat, scope=Scope(units=frozenset(), everything=True, hide_state_secret=True)
        )
    assert [sc.code for sc in only_b.systems] == ["YTE"] and only_b.province.systems == 1
    assert sorted(sc.code for sc in provider.systems) == ["DVC", "YTE"]


def test_reevaluate_one_system_and_the_scheduled_job(
    world: Database, store: Store, settings: Settings
) -> None:
    with world.session() as s:
        report = reevaluate(s, store, settings=settings, systems=["YTE"], now=NOW)
    assert report is not None and [sc.code for sc in report.systems] == ["YTE"]
    with world.session() as s:
        report = reevaluate(s, store, settings=settings, units=[A], now=NOW)
        assert report is not None and sorted(sc.code for sc in report.systems) == [
            "DVC",
            "QLVB-MAT",
        ]
        assert reevaluate(s, store, settings=settings) is None  # nothing named
    scheduled_evaluation(world, store, settings)
    with world.session() as s:
        counts = dict(
            s.execute(
                select(ComplianceSnapshotRow.system, func.count()).group_by(
                    ComplianceSnapshotRow.system
                )
            ).all()
        )
    assert counts == {"YTE": 2, "DVC": 2, "QLVB-MAT": 2}

    scheduler = compliance_scheduler(world, store, settings)
    job, on_change = scheduler.get_jobs()
    assert job.func_ref == JOB_REF and on_change.func_ref == CHANGE_JOB_REF
    assert job.trigger.interval.total_seconds() == settings.compliance_interval_seconds


def test_an_inventory_change_re_evaluates(
    world: Database, store: Store, settings: Settings
) -> None:
    """The on-change job evaluates only after the inventory changed since its last look."""

    def snapshots() -> int:
        with world.session() as s:
            return s.scalar(select(func.count()).select_from(ComplianceSnapshotRow)) or 0

    assert not evaluate_if_inventory_changed(world, store, settings)  # first look: a baseline
    assert not evaluate_if_inventory_changed(world, store, settings)
    assert snapshots() == 0
    with world.session() as s:
        s.get_one(SystemRow, "YTE").level = 4
        s.get_one(SystemRow, "YTE").updated_at = utc(NOW) + timedelta(seconds=1)
    assert evaluate_if_inventory_changed(world, store, settings)
    assert snapshots() == 3  # every system once
    assert not evaluate_if_inventory_changed(world, store, settings)


def test_a_missing_catalogue_is_logged_not_raised(
    world: Database, store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    broken = settings.model_copy(update={"compliance_catalogue": None})
    scheduled_evaluation(world, store, broken)
    assert "compliance evaluation failed" in caplog.text
    with world.session() as s:
        assert reevaluate(s, store, settings=broken, systems=["DVC"]) is None
