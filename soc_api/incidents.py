"""The incident service: alerts grouped into incidents by rule, key fields and a time window.

A burst of alerts of one rule with the same group-by values within the window becomes one
incident (a 500-host brute force is one incident, not 500). The key fields of each alert
are copied into SQL so the working state survives the loss of the event store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
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
from socmon.errors import StoreError
from socmon.logging import kv
from socmon.spool import Record, Spool
from socmon.store import Store

log = logging.getLogger("socmon.incidents")

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


class AlertPuller:
    """Incidents for alerts raised on other hosts (`socmon collect` runs detection locally).

    Reads the alerts index in `event.ingested` order (stamped by the shipper when the alert
    reached the store), from a persisted watermark minus `overlap` seconds for clock skew
    between shippers. Ingesting is idempotent (alert id), so the overlap and the alerts this
    process raised itself (already ingested from its spool) change nothing.
    """

    def __init__(
        self,
        store: Store,
        db: Database,
        service: IncidentService,
        state_file: Path,
        *,
        overlap: float = 120.0,
        page: int = 500,
    ) -> None:
        self.store = store
        self.db = db
        self.service = service
        self.state_file = state_file
        self.overlap = overlap
        self.page = page

    def _watermark(self) -> str:
        try:
            return str(orjson.loads(self.state_file.read_bytes())["ingested"])
        except (OSError, ValueError, KeyError):
            return "1970-01-01T00:00:00.000Z"

    def _save(self, ingested: str) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"ingested": ingested}))
        os.replace(tmp, self.state_file)

    def pull_once(self) -> int:
        """Ingest every alert stored since the watermark; returns how many were new."""
        since = parse_time(self._watermark()) - timedelta(seconds=self.overlap)
        query = {"range": {"event.ingested": {"gte": since.isoformat().replace("+00:00", "Z")}}}
        sort = [{"event.ingested": "asc"}, {"socmon.alert.id": "asc"}]
        after: list[Any] | None = None
        new, newest = 0, None
        while True:
            body: dict[str, Any] = {"query": query, "sort": sort, "size": self.page}
            if after is not None:
                body["search_after"] = after
            hits = self.store.search(self.store.alerts_target, **body)["hits"]["hits"]
            if not hits:
                break
            with self.db.session() as session:
                for hit in hits:
                    known = session.scalar(
                        select(IncidentAlert.id).where(IncidentAlert.alert_id == hit["_id"])
                    )
                    if known is None:
                        self.service.ingest(session, hit["_id"], hit["_source"])
                        new += 1
            after = hits[-1]["sort"]
            newest = get_field(hits[-1]["_source"], "event.ingested") or newest
        if newest:
            self._save(str(newest))
        return new

    async def run(self, shutdown: asyncio.Event, interval: float = 5.0) -> None:
        failing = False
        while not shutdown.is_set():
            try:
                await asyncio.to_thread(self.pull_once)
                failing = False
            except (StoreError, SQLAlchemyError) as e:
                if not failing:
                    log.warning("alert puller paused %s", kv(error=str(e).splitlines()[0]))
                    failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), timeout=interval)
