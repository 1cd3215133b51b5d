"""Alert text the database cannot hold as is: NUL characters (PostgreSQL refuses them in text
and JSON), written out so nothing is lost and ingestion never fails on them."""

from __future__ import annotations

from sqlalchemy import select

from detections.alerts import make_alert
from soc_api import IncidentService
from soc_api.incidents import without_nul
from soc_api.models import Incident, IncidentAlert, IncidentObservable
from socmon.db import Database


def test_without_nul_escapes_every_string_and_key() -> None:
    assert without_nul({"a\x00": ["x\x00y", 1, None, {"k": "\x00"}]}) == {
        "a\\x00": ["x\\x00y", 1, None, {"k": "\\x00"}]
    }
    same = {"plain": "text"}
    assert without_nul(same) == same


def test_an_alert_with_nul_characters_becomes_an_incident(db: Database) -> None:
    alert = make_alert(
        alert_id="nul-1",
        rule_id="r-nul\x00",
        title="brute\x00force",
        level="high",
        tags=[],
        group_by=["user.name"],
        timestamp="2026-11-23T10:00:00Z",
        event_id="e\x00",
        fields={
            "user": {"name": "ad\x00min"},
            "process": {"command_line": "cmd.exe /c \x00whoami"},
            "socmon": {"unit": "so-tttt"},
        },
    )
    service = IncidentService()
    with db.session() as s:
        inc = service.ingest(s, "nul-1", alert)
        assert inc is not None
        iid = inc.id
    with db.session() as s:
        inc = s.get_one(Incident, iid)
        assert inc.rule_id == "r-nul\\x00" and inc.title == "brute\\x00force"
        stored = s.scalars(select(IncidentAlert).where(IncidentAlert.incident_id == iid)).one()
        assert stored.fields["user.name"] == "ad\\x00min"
        users = s.scalars(
            select(IncidentObservable.value).where(
                IncidentObservable.incident_id == iid, IncidentObservable.type == "user"
            )
        ).all()
        assert users == ["ad\\x00min"]
    with db.session() as s:  # a replay is recognised by the same (escaped) alert id
        assert service.ingest(s, "nul-1", alert) is not None
        assert len(s.scalars(select(IncidentAlert)).all()) == 1
