from datetime import timedelta
from pathlib import Path

import orjson
from sqlalchemy import select

from collectors.pipeline import Pipeline, RawMessage
from detections import DetectStage, load_matcher
from detections.engine import correlation_engine
from detections.sigma.matcher import Matcher
from soc_api.incidents import IncidentService, IncidentStage
from soc_api.models import Incident
from socmon.db import Database
from socmon.spool import Spool

ADMIN_PORT_RULE = "d68a873f-6857-441b-a820-02ad753c96ea"


def fgt(src: str, dst: str, port: int, action: str = "deny") -> RawMessage:
    line = (
        f'<189>date=2026-11-23 time=10:00:00 devname="fw-dc" devid="FG100E" logid="0000000013" '
        f'type="traffic" subtype="forward" level="notice" vd="root" srcip={src} srcport=51000 '
        f'srcintf="wan1" dstip={dst} dstport={port} dstintf="dmz" sessionid=1 proto=6 '
        f'action="{action}" policyid=0 service="SSH"'
    )
    return RawMessage(source="syslog+udp://192.0.2.1", data=line.encode(), received_at=0.0)


def test_bad_rules_are_reported_and_the_rest_load(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text("title: x\ndetection: [unclosed\n")
    (tmp_path / "nocondition.yml").write_text(
        "title: y\nlogsource: {product: x}\ndetection:\n  sel: {a: 1}\n"
    )
    _matcher, ruleset, report = load_matcher([tmp_path])
    assert {e.path.name for e in ruleset.errors} == {"broken.yml", "nocondition.yml"}
    assert all(e.reason for e in ruleset.errors)
    assert ADMIN_PORT_RULE in {r.id for r in report.compiled}


def test_streaming_detection_to_incident(tmp_path: Path, db: Database) -> None:
    events = Spool(tmp_path / "events", consumers=["detect"])
    alerts = Spool(tmp_path / "alerts", consumers=["incident"])
    matcher, _, _ = load_matcher()
    Pipeline(events).process(
        [
            fgt("203.0.113.50", "10.10.10.10", 22),  # outside -> DC admin port: alert
            fgt("203.0.113.50", "10.10.10.10", 3389),  # same pair: same incident
            fgt("203.0.113.50", "10.10.10.10", 22, action="accept"),  # allowed: no alert
            fgt("10.1.1.1", "10.10.10.10", 22),  # internal source: no alert
            fgt("203.0.113.50", "10.10.10.10", 8080),  # not an admin port: no alert
            fgt("198.51.100.7", "10.10.10.11", 22),  # another pair: another incident
        ]
    )
    stage = DetectStage(events, alerts, matcher)
    assert stage.once() == 6
    assert stage.once() == 0
    raised = [orjson.loads(r.payload) for r in alerts.reader("incident").read(100)]
    alerts.reader("incident").rewind()
    assert len(raised) == 3
    first = raised[0]
    assert first["rule"]["id"] == ADMIN_PORT_RULE and first["event"]["kind"] == "alert"
    assert first["source"]["ip"] == "203.0.113.50" and first["destination"]["port"] == 22
    assert first["socmon"]["alert"]["group_by"] == ["source.ip", "destination.ip"]

    incidents = IncidentStage(alerts, db, IncidentService(window=timedelta(hours=1)))
    assert incidents.once() == 3
    with db.session() as s:
        rows = s.scalars(select(Incident).order_by(Incident.id)).all()
        assert [(r.alert_count, r.group_fields["source.ip"]) for r in rows] == [
            (2, "203.0.113.50"),
            (1, "198.51.100.7"),
        ]
    events.close()
    alerts.close()


def test_detection_resumes_from_its_cursor(tmp_path: Path) -> None:
    """A restart between batches neither skips nor re-evaluates committed events."""
    matcher, _, _ = load_matcher()
    events = Spool(tmp_path / "events", consumers=["detect"])
    alerts = Spool(tmp_path / "alerts", consumers=["incident"])
    Pipeline(events).process([fgt("203.0.113.1", "10.0.0.1", 22)])
    DetectStage(events, alerts, matcher).once()
    Pipeline(events).process([fgt("203.0.113.2", "10.0.0.1", 22)])
    events.close()
    alerts.close()
    events = Spool(tmp_path / "events", consumers=["detect"])
    alerts = Spool(tmp_path / "alerts", consumers=["incident"])
    assert DetectStage(events, alerts, matcher).once() == 1
    ips = [orjson.loads(r.payload)["source"]["ip"] for r in alerts.reader("incident").read(10)]
    assert ips == ["203.0.113.1", "203.0.113.2"]
    events.close()
    alerts.close()


SSH_BRUTE_FORCE = "5c17bb39-c8fa-497a-b9cc-bf6f97b5d59b"
SSH_FAILURE = "aef338a8-0397-4827-83e8-26887dffa43f"


def auth_line(second: int, ip: str, user: str = "admin") -> RawMessage:
    line = (
        f"Nov 23 10:{second // 60:02d}:{second % 60:02d} web01 sshd[{4000 + second}]: "
        f"Failed password for invalid user {user} from {ip} port {40000 + second} ssh2"
    )
    return RawMessage(
        source="file:///var/log/auth.log", data=line.encode(), received_at=0.0, parser="linux_auth"
    )


def test_correlation_alerts_reach_incidents(tmp_path: Path, db: Database) -> None:
    """SSH failures through the real parser, matcher and correlation engine, to an incident."""
    events = Spool(tmp_path / "events", consumers=["detect"])
    alerts = Spool(tmp_path / "alerts", consumers=["incident"])
    matcher, _, report = load_matcher()
    engine = correlation_engine(matcher)
    assert engine is not None
    assert SSH_BRUTE_FORCE in {c.id for c in engine.report.compiled}
    assert SSH_FAILURE in {r.id for r in report.compiled}

    Pipeline(events).process(
        [auth_line(i * 5, "203.0.113.80") for i in range(12)]  # 12 failures in 1 minute
        + [auth_line(i * 5, "198.51.100.81") for i in range(9)]  # 9: below the threshold
    )
    stage = DetectStage(events, alerts, matcher)
    assert stage.correlations is engine
    assert stage.once() == 21
    raised = [orjson.loads(r.payload) for r in alerts.reader("incident").read(100)]
    alerts.reader("incident").rewind()
    # The failures themselves raise nothing (generate: false); the correlation raises one.
    # (Other built-in rules may alert on these lines too: only the SSH rules are checked.)
    assert SSH_FAILURE not in {a["rule"]["id"] for a in raised}
    brute = [a for a in raised if a["rule"]["id"] == SSH_BRUTE_FORCE]
    assert [a["source"]["ip"] for a in brute] == ["203.0.113.80"]
    assert brute[0]["socmon"]["correlation"]["count"] == 10

    incidents = IncidentStage(alerts, db, IncidentService(window=timedelta(hours=1)))
    assert incidents.once() == len(raised)
    with db.session() as s:
        rows = s.scalars(select(Incident).where(Incident.rule_id == SSH_BRUTE_FORCE)).all()
        (row,) = rows
        assert row.alert_count == 1 and row.severity == "high"
        assert row.group_fields == {"source.ip": "203.0.113.80"}
        assert row.category == "A4"
    events.close()
    alerts.close()


def test_stage_without_correlation_engine_alerts_on_every_match(tmp_path: Path) -> None:
    """A matcher not built by load_matcher has no engine: every match is an alert."""
    events = Spool(tmp_path / "events", consumers=["detect"])
    alerts = Spool(tmp_path / "alerts", consumers=["incident"])
    _matcher, ruleset, report = load_matcher()
    bare = Matcher(report.compiled)
    assert correlation_engine(bare) is None
    Pipeline(events).process([auth_line(i, "203.0.113.90") for i in range(3)])
    stage = DetectStage(events, alerts, bare)
    assert stage.once() == 3
    raised = [orjson.loads(r.payload) for r in alerts.reader("incident").read(100)]
    assert [a["rule"]["id"] for a in raised].count(SSH_FAILURE) == 3
    assert ruleset.correlations  # the rules were there; only the engine was not
    events.close()
    alerts.close()


def test_generate_true_keeps_base_rule_alerts(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "generating.yml").write_text(
        """title: Root SSH failures
id: 6f1d7a52-3c1e-4d59-9a53-8f0f4d1f2a10
correlation:
    type: event_count
    generate: true
    rules: [root_ssh_failure]
    group-by: [source.ip]
    timespan: 5m
    condition: {gte: 2}
level: medium
---
title: Root SSH failure
id: 6f1d7a52-3c1e-4d59-9a53-8f0f4d1f2a11
name: root_ssh_failure
logsource: {product: linux, service: auth}
detection:
    selection:
        event.dataset: system.auth
        event.outcome: failure
        user.name: root
    condition: selection
level: low
"""
    )
    events = Spool(tmp_path / "events", consumers=["detect"])
    alerts = Spool(tmp_path / "alerts", consumers=["incident"])
    matcher, _, _ = load_matcher([rules])
    Pipeline(events).process([auth_line(i, "192.0.2.44", user="root") for i in range(2)])
    DetectStage(events, alerts, matcher).once()
    raised = [orjson.loads(r.payload)["rule"]["id"] for r in alerts.reader("incident").read(100)]
    # Own alerts of the base rule (generate: true) and the correlation; the built-in SSH
    # failure rule stays silent (its correlation does not generate).
    assert raised.count("6f1d7a52-3c1e-4d59-9a53-8f0f4d1f2a11") == 2
    assert raised.count("6f1d7a52-3c1e-4d59-9a53-8f0f4d1f2a10") == 1
    assert SSH_FAILURE not in raised
    events.close()
    alerts.close()
