"""Live checks flip when socmon's data changes (real store, real database)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from detections.catalog import RuleCatalog, RulePolicy
from inventory.tables import LinkRow, PublicRangeRow
from playbooks.models import PlaybookRun, PlaybookTask
from soc_api.compliance.evaluate import evaluate
from soc_api.models import Incident, IncidentAlert
from socmon.config import Settings
from socmon.db import Database
from socmon.store import Store
from tests.soc_api.compliance.world import (
    NOW,
    add_world,
    all_sources_live,
    attest,
    catalogue,
    event,
    health_row,
    put_events,
    put_health,
    record,
)

pytestmark = pytest.mark.integration


def run(
    db: Database,
    store: Store | None,
    settings: Settings,
    now: datetime = NOW,
    catalog: Any = None,
) -> dict[str, dict[str, Any]]:
    """{system: {control or layer id: result dict}} after one evaluation."""
    with db.session() as s:
        report = evaluate(s, store, catalogue(), settings=settings, now=now, catalog=catalog)
    out: dict[str, dict[str, Any]] = {}
    for sc in report.systems:
        out[sc.code] = {c.id: c.model_dump() for c in sc.controls}
        out[sc.code].update({lr.id: lr.model_dump() for lr in sc.layers})
    return out


@pytest.fixture
def world(db: Database) -> Database:
    with db.session() as s:
        add_world(s)
    return db


def test_a_silent_source_fails_logs_collected_after_24_hours(
    world: Database, store: Store, settings: Settings
) -> None:
    all_sources_live(store)
    got = run(world, store, settings)["DVC"]
    assert got["TCVN11930.TECH.NET.LOG"]["status"] == "pass", got["TCVN11930.TECH.NET.LOG"]
    assert got["TCVN11930.TECH.SERVER.LOG"]["status"] == "pass"
    assert got["TT31.MON.MIN_INPUTS"]["status"] == "pass", got["TT31.MON.MIN_INPUTS"]["reason"]

    # the firewall stops sending: still fine 23 h later, failing after the 24 h threshold
    fw = health_row(
        "soc-col01",
        "syslog+udp://10.10.0.1",
        NOW - timedelta(minutes=5),
        NOW - timedelta(days=200),
    )
    put_health(store, [fw])
    later = run(world, store, settings, now=NOW + timedelta(hours=23))["DVC"]
    assert later["TCVN11930.TECH.NET.LOG"]["status"] == "pass"
    late = run(world, store, settings, now=NOW + timedelta(hours=25))["DVC"]
    net = late["TCVN11930.TECH.NET.LOG"]
    assert net["status"] == "fail" and "dc-fw01" in net["reason"], net
    assert "dc-fw01" in net["reason_vi"] and net["evidence"]["silent"] == ["dc-fw01", "dc-ids01"]
    assert late["TT31.MON.MIN_INPUTS"]["status"] == "fail"
    assert "firewall" in late["TT31.MON.MIN_INPUTS"]["reason"]


def test_events_stand_in_for_source_health(
    world: Database, store: Store, settings: Settings
) -> None:
    put_events(
        store,
        "windows.security",
        [
            (
                "e1",
                event(NOW - timedelta(hours=2), "windows.security", host={"hostname": "yt-app01"}),
            )
        ],
    )
    got = run(world, store, settings)["YTE"]
    assert got["TCVN11930.TECH.SERVER.LOG"]["status"] == "not_applicable"  # nd85 control
    # the nd331 retention control sees the event through the host name
    ret = got["TCVN14423.LOG.RETENTION_REVIEW"]
    assert ret["status"] == "fail" and "yt-app01" in ret["reason"], ret
    assert ret["evidence"]["assets"]["yt-app01"]["oldest_event"] is not None


def test_retention_against_level_and_configured_days(
    world: Database, store: Store, settings: Settings
) -> None:
    all_sources_live(store)
    old = NOW - timedelta(days=100)
    put_events(
        store,
        "nginx",
        [
            ("w1", event(old, "nginx", host={"hostname": "dc-web01"})),
            ("d1", event(old, "linux_auth", observer={"ip": ["10.10.2.10"]})),
        ],
    )
    got = run(world, store, settings)["DVC"]
    assert got["TCVN11930.TECH.SERVER.LOG_RETENTION"]["status"] == "pass", got[
        "TCVN11930.TECH.SERVER.LOG_RETENTION"
    ]
    short = run(world, store, settings.model_copy(update={"retention_days": 60}))["DVC"]
    ret = short["TCVN11930.TECH.SERVER.LOG_RETENTION"]
    assert ret["status"] == "fail" and "60 d" in ret["reason"] and "92 d" in ret["reason"]
    # the firewall and the sensor report (source health) but none of their events is stored
    storage = got["TT31.MON.STORAGE_30D"]
    assert storage["status"] == "fail" and storage["evidence"]["short"] == ["dc-fw01", "dc-ids01"]


def test_registering_the_ranges_makes_layer_4_pass(
    world: Database, store: Store, settings: Settings
) -> None:
    with world.session() as s:
        record(s, "connector_heartbeat", NOW - timedelta(hours=1))
    layer = run(world, store, settings)["DVC"]["LAYER4.NATIONAL_MONITORING_LINK"]
    assert layer["status"] == "fail" and "203.0.113.0/28" in layer["reason"], layer
    assert layer["required"] is True

    with world.session() as s:
        r = s.scalars(select(PublicRangeRow).where(PublicRangeRow.system == "DVC")).one()
        r.ncsc_status = "registered"
        r.registered_on = date(2026, 11, 1)
    assert run(world, store, settings)["DVC"]["LAYER4.NATIONAL_MONITORING_LINK"]["status"] == "pass"

    # a public address seen for the system outside the registered range fails it again
    put_events(
        store,
        "fortigate",
        [
            (
                "f1",
                event(
                    NOW - timedelta(days=1),
                    "fortigate",
                    destination={"ip": "14.177.10.7"},
                    source={"ip": "192.0.2.99"},
                    socmon={"destination": {"systems": ["DVC"]}},
                ),
            )
        ],
    )
    layer = run(world, store, settings)["DVC"]["LAYER4.NATIONAL_MONITORING_LINK"]
    assert layer["status"] == "fail" and "14.177.10.7" in layer["reason"], layer
    # and the heartbeat matters: 25 h without one fails
    late = run(world, None, settings, now=NOW + timedelta(hours=25))["DVC"]
    assert "heartbeat" in late["LAYER4.NATIONAL_MONITORING_LINK"]["reason"]


def test_an_expired_attestation_fails_and_is_overdue(
    world: Database, store: Store, settings: Settings
) -> None:
    policy = "TCVN11930.MGMT.POLICY"
    assert run(world, store, settings)["DVC"][policy]["status"] == "fail"
    with world.session() as s:
        attest(s, policy, expires_on=date(2026, 11, 24))
    got = run(world, store, settings)["DVC"][policy]
    assert got["status"] == "pass" and got["evidence"]["document_ref"] == f"doc-{policy}"
    assert got["due"] == date(2026, 11, 24) and not got["overdue"]
    got = run(world, store, settings, now=NOW + timedelta(days=2))
    res = got["DVC"][policy]
    assert res["status"] == "fail" and "expired on 2026-11-24" in res["reason"]
    assert res["overdue"] is True
    assert any(o["control"] == policy for o in _overdue(world, settings))


def _overdue(db: Database, settings: Settings) -> list[dict[str, Any]]:
    from soc_api.compliance.evaluate import report_from_db

    with db.session() as s:
        report = report_from_db(s, catalogue())
    return [o.model_dump() for sc in report.systems if sc.code == "DVC" for o in sc.overdue]


def test_unverified_controls_never_fail(world: Database, store: Store, settings: Settings) -> None:
    got = run(world, store, settings)["DVC"]
    # attested, no document
    ops = got["TCVN11930.MGMT.OPS.NETWORK_SERVER_DATA"]
    assert ops["status"] == "unknown" and ops["enforced"] is False
    # live, failing data (no firewall logs): shown as would-fail, not fail
    acl = got["TCVN11930.TECH.NET.ACCESS_CONTROL"]
    assert acl["status"] == "unknown" and acl["enforced"] is False
    assert acl["evidence"]["would_fail"] is True and "would fail" in acl["reason"]
    assert all(r["status"] != "fail" for r in got.values() if r.get("confidence") == "unverified")
    # a live check socmon cannot compute says what it lacks
    edr = run(world, store, settings)["DVC"]["TCVN11930.TECH.SERVER.MALWARE"]
    assert edr["status"] == "unknown" and edr["reason"].startswith("socmon receives no")


def test_an_attestation_answers_a_live_check_socmon_cannot_compute(
    world: Database, store: Store, settings: Settings
) -> None:
    with world.session() as s:
        attest(s, "TCVN11930.TECH.SERVER.MALWARE", attester="Trung tâm CNTT")
    got = run(world, store, settings)["DVC"]["TCVN11930.TECH.SERVER.MALWARE"]
    assert got["status"] == "pass" and "Trung tâm CNTT" in got["reason"]
    assert got["evidence"]["live"].startswith("socmon receives no")


def test_independent_assessment_age_and_independence(
    world: Database, store: Store, settings: Settings
) -> None:
    layer3 = "LAYER3.INDEPENDENT_ASSESSMENT"
    with world.session() as s:
        attest(s, "ND85.ART20.SYSTEM_ASSESSMENT", attested_on=date(2025, 10, 1), attester="ATTT Co")
    got = run(world, store, settings)["DVC"]
    assert got[layer3]["status"] == "fail" and "older than 12 months" in got[layer3]["reason"]
    with world.session() as s:
        attest(s, layer3, attested_on=date(2026, 9, 1), attester="ATTT Co")
        attest(
            s, "LAYER2.PROFESSIONAL_MONITORING", attester="ATTT Co", detail={"provider": "ATTT Co"}
        )
    got = run(world, store, settings)["DVC"]
    assert got[layer3]["status"] == "fail" and "not independent" in got[layer3]["reason"]
    with world.session() as s:
        attest(s, layer3, attested_on=date(2026, 10, 1), attester="Other Assessor")
    got = run(world, store, settings)["DVC"]
    assert got[layer3]["status"] == "pass", got[layer3]
    assert got["ND85.ART20.SYSTEM_ASSESSMENT"]["status"] == "pass"


def test_records_drive_drills_scans_and_reports(
    world: Database, store: Store, settings: Settings
) -> None:
    got = run(world, store, settings)["DVC"]
    assert got["TT31.MON.REPORTS"]["status"] == "fail"
    assert got["TT31.MON.CONNECT_NATIONAL"]["status"] == "fail"
    with world.session() as s:
        for day in range(1, 8):
            record(s, "monitoring_report", NOW - timedelta(days=day), period="daily")
        for week in range(4):
            record(s, "monitoring_report", NOW - timedelta(days=7 * week + 1), period="weekly")
        record(s, "monitoring_report", NOW - timedelta(days=100), period="half_year")
        record(s, "connector_heartbeat", NOW - timedelta(hours=2))
        record(s, "drill", NOW - timedelta(days=300), system=None)
    got = run(world, store, settings)["DVC"]
    assert got["TT31.MON.REPORTS"]["status"] == "pass", got["TT31.MON.REPORTS"]
    assert got["TT31.MON.CONNECT_NATIONAL"]["status"] == "pass"
    assert got["ND85.ART20.TRAINING_DRILL"]["status"] == "pass"  # the unit's drill
    # a year later the drill is overdue
    later = run(world, store, settings, now=NOW + timedelta(days=70))["DVC"]
    drill = later["ND85.ART20.TRAINING_DRILL"]
    assert drill["status"] == "fail" and drill["overdue"] is True


def test_incident_reporting_deadlines(world: Database, store: Store, settings: Settings) -> None:
    notify = "TT20.IR.NOTIFY_5D"
    assert run(world, store, settings)["DVC"][notify]["status"] == "pass"  # no incident
    with world.session() as s:
        inc = Incident(
            group_key="g1",
            rule_id="r-web",
            title="Web attack",
            severity="high",
            status="investigating",
            category="A",
            response_path="normal",
            unit="SO-TTTT",
            group_fields={},
            first_seen=NOW - timedelta(days=10),
            last_seen=NOW - timedelta(days=9),
            alert_count=1,
            created_at=NOW - timedelta(days=10),
            updated_at=NOW - timedelta(days=9),
            level=3,
        )
        s.add(inc)
        s.flush()
        s.add(
            IncidentAlert(
                incident_id=inc.id,
                alert_id="al-1",
                event_id="ev-1",
                rule_id="r-web",
                ts=NOW - timedelta(days=10),
                fields={"socmon": {"destination": {"systems": ["DVC"], "unit": "SO-TTTT"}}},
            )
        )
        inc_id = inc.id
    assert run(world, store, settings)["DVC"][notify]["status"] == "unknown"  # no run records it
    with world.session() as s:
        run_row = PlaybookRun(
            incident_id=inc_id,
            playbook_id="pb-web",
            group="A",
            path="normal",
            regime="nd85",
            unit="SO-TTTT",
            opened_at=NOW - timedelta(days=10),
            created_at=NOW - timedelta(days=10),
        )
        s.add(run_row)
        s.flush()
        s.add(
            PlaybookTask(
                run_id=run_row.id,
                task_id="report-incident-notice",
                position=1,
                phase="reporting",
                kind="report",
                title={"vi": "x", "en": "x"},
                owner_role="analyst",
                sla_seconds=5 * 86400,
                due_at=NOW - timedelta(days=5),
                status="open",
                spec={},
                breached_at=NOW - timedelta(days=5),
            )
        )
    got = run(world, store, settings)["DVC"][notify]
    assert got["status"] == "fail" and str(inc_id) in got["reason"], got
    assert got["evidence"]["matched_by_unit_and_level"] == []
    # the health department's system is not concerned
    assert run(world, store, settings)["YTE"]["TCVN11930.MGMT.OPS.INCIDENT"]["status"] in (
        "not_applicable",
        "pass",
    )


def test_detection_rules_cover_the_systems_log_types(
    world: Database, store: Store, settings: Settings, tmp_path: Path
) -> None:
    all_sources_live(store)
    rules = tmp_path / "rules"
    rules.mkdir()
    for n, product in enumerate(("nginx", "fortigate", "suricata", "linux")):
        (rules / f"r{n}.yml").write_text(
            f"title: rule {product}\nid: 00000000-0000-0000-0000-00000000000{n}\n"
            f"status: stable\nlevel: high\nlogsource:\n  product: {product}\n"
            "detection:\n  sel:\n    message|contains: attack\n  condition: sel\n"
        )
    catalog = RuleCatalog.load([rules], RulePolicy())
    with world.session() as s:
        attest(s, "LAYER2.PROFESSIONAL_MONITORING", attester="Provider JSC")
    got = run(world, store, settings, catalog=catalog)["DVC"]
    layer2 = got["LAYER2.PROFESSIONAL_MONITORING"]
    assert layer2["status"] == "pass", layer2
    (rules / "r1.yml").unlink()  # nothing left for fortigate logs
    catalog = RuleCatalog.load([rules], RulePolicy())
    layer2 = run(world, store, settings, catalog=catalog)["DVC"]["LAYER2.PROFESSIONAL_MONITORING"]
    assert layer2["status"] == "fail" and "fortigate" in layer2["reason"], layer2


def test_every_internet_link_needs_a_live_sensor(
    world: Database, store: Store, settings: Settings
) -> None:
    coverage = "TT31.MON.SENSOR_COVERAGE"
    got = run(world, store, settings)["DVC"][coverage]
    assert got["status"] == "unknown" and "no Internet link" in got["reason"]
    with world.session() as s:
        s.add(
            LinkRow(code="dc-inet1", kind="internet", site="dc", sensor="dc-ids01", updated_at=NOW)
        )
        s.add(LinkRow(code="dc-tslcd", kind="tslcd", site="dc", updated_at=NOW))
    all_sources_live(store)
    assert run(world, store, settings)["DVC"][coverage]["status"] == "pass"
    with world.session() as s:
        s.add(LinkRow(code="dc-inet2", kind="internet", site="dc", updated_at=NOW))
    got = run(world, store, settings)["DVC"][coverage]
    assert got["status"] == "fail" and "without a sensor: dc-inet2" in got["reason"], got
    got = run(world, store, settings, now=NOW + timedelta(days=2))["DVC"][coverage]
    assert "sensor silent for 24 h on links: dc-inet1" in got["reason"]
