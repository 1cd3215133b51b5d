from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from soc_api import audit
from soc_api.incidents import IncidentService
from soc_api.models import Incident, IncidentAlert
from socmon.db import Database
from socmon.store import Store


def alert(
    n: int,
    src: str,
    dst: str = "10.10.10.10",
    ts: str = "2026-11-23T10:00:00Z",
    level: str = "high",
) -> dict[str, Any]:
    return {
        "@timestamp": ts,
        "rule": {"id": "r-1", "name": "Denied admin-port connection from the Internet"},
        "source": {"ip": src},
        "destination": {"ip": dst, "port": 22},
        "socmon": {
            "alert": {
                "event_id": f"e{n}",
                "level": level,
                "tags": ["attack.initial_access", "socmon.group.a4"],
                "group_by": ["destination.ip"],
            }
        },
    }


def test_burst_from_many_sources_is_one_incident(db: Database) -> None:
    svc = IncidentService(window=timedelta(hours=1))
    with db.session() as s:
        for n in range(500):
            svc.ingest(s, f"a{n}", alert(n, f"198.51.100.{n % 250}"))
    with db.session() as s:
        incidents = s.scalars(select(Incident)).all()
        assert len(incidents) == 1
        inc = incidents[0]
        assert inc.alert_count == 500
        assert inc.category == "A4"
        assert inc.status == "new" and inc.response_path == "normal"
        assert inc.group_fields == {"destination.ip": "10.10.10.10"}
        assert s.scalar(select(IncidentAlert.fields).limit(1))["destination.port"] == 22


def test_other_target_or_outside_window_is_another_incident(db: Database) -> None:
    svc = IncidentService(window=timedelta(minutes=10))
    with db.session() as s:
        a = svc.ingest(s, "a1", alert(1, "198.51.100.1"))
        b = svc.ingest(s, "a2", alert(2, "198.51.100.1", dst="10.10.10.11"))
        c = svc.ingest(s, "a3", alert(3, "198.51.100.1", ts="2026-11-23T11:00:00Z"))
        assert len({a.id, b.id, c.id}) == 3


def test_replayed_alert_changes_nothing(db: Database) -> None:
    svc = IncidentService()
    with db.session() as s:
        first = svc.ingest(s, "a1", alert(1, "198.51.100.1"))
        again = svc.ingest(s, "a1", alert(1, "198.51.100.1"))
        assert first.id == again.id and again.alert_count == 1


def test_severity_escalates_path(db: Database) -> None:
    svc = IncidentService()
    with db.session() as s:
        svc.ingest(s, "a1", alert(1, "198.51.100.1"))
        inc = svc.ingest(s, "a2", alert(2, "198.51.100.2", level="critical"))
        assert inc.severity == "critical" and inc.response_path == "serious"


def test_incident_creation_is_audited_and_chain_verifies(db: Database) -> None:
    svc = IncidentService()
    with db.session() as s:
        svc.ingest(s, "a1", alert(1, "198.51.100.1"))
        svc.ingest(s, "a2", alert(2, "198.51.100.1", dst="10.0.0.5"))
    with db.session() as s:
        ok, n, _ = audit.verify(s)
        assert ok and n == 2
        rec = s.scalars(select(audit.AuditRecord).order_by(audit.AuditRecord.id)).first()
        assert rec is not None
        rec.detail = {"tampered": True}
    with db.session() as s:
        ok, _, message = audit.verify(s)
        assert not ok and "does not match" in message


def test_alerts_from_other_hosts_become_incidents(
    tmp_path: Path, db: Database, store: Store
) -> None:
    """A collector host ships its alerts to the store; the central puller turns them into incidents."""
    import orjson

    from collectors.ship import Shipper
    from soc_api.incidents import AlertPuller
    from socmon.spool import Spool

    remote = Spool(tmp_path / "remote-alerts", consumers=["ship"])
    shipper = Shipper(remote, store, lambda _d: store.alerts_target, tmp_path / "dead")
    puller = AlertPuller(store, db, IncidentService(), tmp_path / "state" / "puller.json")
    first = [alert(n, f"198.51.100.{n}") | {"_id": f"remote-{n}"} for n in range(3)]
    for a in first:
        a["socmon"]["alert"]["id"] = a["_id"]
    remote.append(first, lambda d, _s: orjson.dumps(d))
    shipper.once()
    store.refresh(store.alerts_target)
    assert puller.pull_once() == 3
    assert puller.pull_once() == 0  # watermark + idempotent ingest
    # A collector that was offline ships an alert raised long ago: it is not skipped.
    late = alert(9, "198.51.100.9", ts="2026-11-01T00:00:00Z") | {"_id": "remote-late"}
    late["socmon"]["alert"]["id"] = "remote-late"
    remote.append([late], lambda d, _s: orjson.dumps(d))
    shipper.once()
    store.refresh(store.alerts_target)
    assert puller.pull_once() == 1
    with db.session() as s:
        assert (
            s.scalar(select(IncidentAlert.alert_id).where(IncidentAlert.alert_id == "remote-late"))
            == "remote-late"
        )
    remote.close()


def test_stage_batch_is_idempotent_and_skips_suppressed(tmp_path: Path, db: Database) -> None:
    """The alerts-spool consumer: a replayed batch adds nothing; a suppressed alert is kept
    aside, not opened, and stays aside when replayed."""
    from datetime import UTC, datetime

    import orjson

    from soc_api.incidents import IncidentStage
    from soc_api.models import SuppressedAlert, Suppression
    from socmon.spool import Record, Spool

    now = datetime.now(UTC)
    with db.session() as s:
        s.add(
            Suppression(
                rule_id="r-1",
                match={"source.ip": "198.51.100.99"},
                reason="authorised scanner",
                expires_at=now + timedelta(hours=1),
                created_by="test",
                created_at=now,
                hits=0,
            )
        )
    spool = Spool(tmp_path / "alerts", consumers=["incident"])
    stage = IncidentStage(spool, db, IncidentService())
    docs = [alert(n, f"198.51.100.{n}") | {"_id": f"s{n}"} for n in (1, 2, 99)]
    records = [Record(i + 1, orjson.dumps(d), 0.0) for i, d in enumerate(docs)]
    stage.handle(records)
    stage.handle(records)  # replay after a crash before the ack
    with db.session() as s:
        [inc] = s.scalars(select(Incident)).all()
        assert inc.alert_count == 2
        assert s.scalars(select(SuppressedAlert.alert_id)).all() == ["s99"]
    spool.close()
