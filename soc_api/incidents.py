"""The incident service: alerts grouped into incidents by rule, key fields and a time window.

A burst of alerts of one rule with the same group-by values within the window becomes one
incident (a 500-host brute force is one incident, not 500). The key fields of each alert
are copied into SQL so the working state survives the loss of the event store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from soc_api import audit
from soc_api.labels import INCIDENT_CATEGORY, OPEN_STATUSES
from soc_api.models import Incident, IncidentAlert
from socmon.consumer import BatchConsumer
from socmon.db import Database
from socmon.ecs import get_field
from socmon.spool import Record, Spool

ACTOR = "system:incidents"
# Fields copied from each alert into SQL.
KEY_FIELDS = (
    "@timestamp",
    "event.action",
    "event.dataset",
    "source.ip",
    "source.port",
    "destination.ip",
    "destination.port",
    "host.name",
    "user.name",
    "observer.name",
    "rule.name",
)
SEVERITY_ORDER = ("informational", "low", "medium", "high", "critical")


def parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def category_from_tags(tags: Sequence[str]) -> str | None:
    """The Decision 05/2017 group from a `socmon.group.a4`-style rule tag."""
    for tag in tags:
        if tag.lower().startswith("socmon.group."):
            code = tag.rsplit(".", 1)[1].upper()
            if code in INCIDENT_CATEGORY:
                return code
    return None


def response_path(severity: str) -> str:
    return "serious" if severity == "critical" else "normal"


def group_key(rule_id: str, group_fields: Mapping[str, Any]) -> str:
    body = orjson.dumps([rule_id, group_fields], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


class IncidentService:
    """Turns alert documents into incidents."""

    def __init__(self, window: timedelta = timedelta(hours=1)) -> None:
        self.window = window

    def ingest(self, session: Session, alert_id: str, alert: Mapping[str, Any]) -> Incident:
        """Attach one alert to its incident, creating the incident when none is open.

        Idempotent: an alert already attached (a replay of the spool) changes nothing.
        """
        existing = session.scalars(
            select(IncidentAlert).where(IncidentAlert.alert_id == alert_id)
        ).first()
        if existing is not None:
            return session.get_one(Incident, existing.incident_id)

        rule_id = str(get_field(alert, "rule.id") or "unknown")
        group_by = get_field(alert, "socmon.alert.group_by") or []
        group_fields = {f: _plain(get_field(alert, f)) for f in group_by}
        key = group_key(rule_id, group_fields)
        ts = parse_time(get_field(alert, "@timestamp"))
        severity = str(get_field(alert, "socmon.alert.level") or "medium")
        if severity not in SEVERITY_ORDER:
            severity = "medium"

        incident = session.scalars(
            select(Incident)
            .where(Incident.group_key == key, Incident.status.in_(OPEN_STATUSES))
            .order_by(Incident.id.desc())
            .limit(1)
        ).first()
        now = datetime.now(UTC)
        if incident is not None and parse_time(incident.last_seen) < ts - self.window:
            incident = None
        if incident is None:
            tags = get_field(alert, "socmon.alert.tags") or []
            incident = Incident(
                group_key=key,
                rule_id=rule_id,
                title=str(get_field(alert, "rule.name") or rule_id),
                severity=severity,
                status="new",
                category=category_from_tags(tags if isinstance(tags, list) else [tags]),
                response_path=response_path(severity),
                unit=_plain(get_field(alert, "socmon.unit")),
                group_fields=group_fields,
                first_seen=ts,
                last_seen=ts,
                alert_count=0,
                created_at=now,
                updated_at=now,
            )
            session.add(incident)
            session.flush()
            audit.record(
                session,
                ACTOR,
                "incident.create",
                "incident",
                incident.id,
                rule_id=rule_id,
                group=group_fields,
            )
        else:
            if SEVERITY_ORDER.index(severity) > SEVERITY_ORDER.index(incident.severity):
                incident.severity = severity
                incident.response_path = response_path(severity)
            incident.first_seen = min(parse_time(incident.first_seen), ts)
            incident.last_seen = max(parse_time(incident.last_seen), ts)
            incident.updated_at = now
        incident.alert_count += 1
        session.add(
            IncidentAlert(
                incident_id=incident.id,
                alert_id=alert_id,
                event_id=str(get_field(alert, "socmon.alert.event_id") or ""),
                rule_id=rule_id,
                ts=ts,
                fields={
                    f: _plain(get_field(alert, f))
                    for f in KEY_FIELDS
                    if get_field(alert, f) is not None
                },
            )
        )
        try:
            session.flush()
        except IntegrityError:
            # The same alert attached concurrently: the other writer won; nothing to add.
            session.rollback()
            existing = session.scalars(
                select(IncidentAlert).where(IncidentAlert.alert_id == alert_id)
            ).one()
            return session.get_one(Incident, existing.incident_id)
        return incident


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value)


class IncidentStage(BatchConsumer):
    """The `incident` consumer of the alerts spool: every alert reaches an incident."""

    component = "incidents"
    retryable = (SQLAlchemyError,)

    def __init__(
        self,
        alerts: Spool,
        db: Database,
        service: IncidentService,
        *,
        consumer: str = "incident",
        batch: int = 500,
    ) -> None:
        super().__init__(alerts, consumer, batch=batch)
        self.db = db
        self.service = service

    def handle(self, records: list[Record]) -> None:
        with self.db.session() as session:
            for rec in records:
                alert = orjson.loads(rec.payload)
                self.service.ingest(session, str(alert.get("_id")), alert)
