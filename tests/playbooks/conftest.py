"""Fixtures of the playbook tests: real incidents made by the incident service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from detections.alerts import make_alert
from soc_api.incidents import IncidentService
from soc_api.models import Incident
from socmon.db import Database


def attack_alert(
    n: int,
    *,
    group: str = "a4",
    level: str = "critical",
    unit: str | None = "so-tttt",
    src: str = "45.95.147.7",  # an Internet address (documentation ranges are not blocked)
    ts: str = "2026-11-23T10:00:00Z",
    rule: str = "r-takeover",
) -> dict[str, Any]:
    return make_alert(
        alert_id=f"pb-{rule}-{n}",
        rule_id=rule,
        title=f"rule {rule}",
        level=level,
        tags=[f"socmon.group.{group}"],
        group_by=["destination.ip"],
        timestamp=ts,
        event_id=f"e{n}",
        fields={
            "source": {"ip": src},
            "destination": {"ip": "10.10.10.10"},
            "host": {"name": "portal-web-01"},
            "user": {"name": "admin"},
            "socmon": {"unit": unit},
        },
    )


def open_incident(
    db: Database,
    *,
    group: str = "a4",
    level: str = "critical",
    unit: str | None = "so-tttt",
    created_at: datetime | None = None,
    rule: str = "r-takeover",
    service: IncidentService | None = None,
) -> int:
    """A real incident from one alert; `created_at` moves its open time (regime choice)."""
    svc = service or IncidentService()
    with db.session() as s:
        inc = svc.ingest(
            s, f"pb-{rule}-1", attack_alert(1, group=group, level=level, unit=unit, rule=rule)
        )
        assert inc is not None
        if created_at is not None:
            inc.created_at = created_at
        s.flush()
        return inc.id


def get_incident(db: Database, incident_id: int) -> Incident:
    with db.session() as s:
        return s.get_one(Incident, incident_id)
