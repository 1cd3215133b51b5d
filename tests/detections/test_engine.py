from datetime import timedelta
from pathlib import Path

import orjson
from sqlalchemy import select

from collectors.pipeline import Pipeline, RawMessage
from detections import DetectStage, load_matcher
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
