"""The incident service: alerts grouped into incidents by rule, key fields and a time window.

A burst of alerts of one rule with the same group-by values within the window becomes one
incident (a brute force from 500 sources against one portal is one incident with 500
source observables, not 500 incidents). The key fields of each alert are copied into SQL so
the working state survives the loss of the event store.

Grouping. The key is the rule id and the values of the rule's `socmon.alert.group_by`
fields. An alert joins the open incident of its key whose time span, widened by the window,
contains the alert's time; otherwise a new incident opens. The window comes from
`IncidentPolicy` (per rule id, else the longest per-tag window, else the default). Each new
incident takes the slot `<key>:<window seconds>:<floor(time / window)>` in the unique column
`incidents.dedup_key`: two writers racing on one alert storm cannot both insert; the loser's
transaction fails and `ingest_batch` retries it, and then it finds the winner. Closing an
incident releases its slot.

Group (Decision 05/2017 A1–C5): the policy's per-rule table, else the rule's
`socmon.group.xx` tag, else the ATT&CK technique/tactic table (`DEFAULT_ATTACK_GROUPS`).
Response path: serious when any `serious_when` entry matches (severity in its list and the
affected systems' highest level >= its `min_level`); by default critical anywhere, or high /
critical on a level-3+ system.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import and_, case, delete, event, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from soc_api import audit
from soc_api.labels import INCIDENT_CATEGORY, INCIDENT_STATUS, OPEN_STATUSES
from soc_api.models import (
    Incident,
    IncidentAlert,
    IncidentComment,
    IncidentEvent,
    IncidentObservable,
    SuppressedAlert,
    Suppression,
    User,
)
from socmon.consumer import BatchConsumer
from socmon.db import Database
from socmon.ecs import get_field
from socmon.errors import SocmonError, StoreError
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
    "url.full",
    "url.domain",
    "socmon.unit",
    "socmon.level",
)
SEVERITY_ORDER = ("informational", "low", "medium", "high", "critical")
SEVERITY_RANK = case({s: i for i, s in enumerate(SEVERITY_ORDER)}, value=Incident.severity, else_=2)
CLOSED_STATUSES = ("closed", "false_positive")
# Allowed state changes (from → to). Anything else is refused (HTTP 409).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("triage", "investigating", "closed", "false_positive"),
    "triage": ("new", "investigating", "closed", "false_positive"),
    "investigating": ("triage", "contained", "closed", "false_positive"),
    "contained": ("investigating", "recovered"),
    "recovered": ("investigating", "closed"),
    "closed": ("triage",),  # reopen
    "false_positive": ("triage",),  # reopen
}
# Observables: ECS fields per observable type.
OBSERVABLE_FIELDS: dict[str, tuple[str, ...]] = {
    "ip": (
        "source.ip",
        "destination.ip",
        "client.ip",
        "server.ip",
        "host.ip",
        "source.nat.ip",
        "destination.nat.ip",
    ),
    "host": ("host.name", "host.hostname", "destination.address", "observer.hostname"),
    "user": ("user.name", "source.user.name", "destination.user.name", "user.target.name"),
    "hash": (
        "file.hash.md5",
        "file.hash.sha1",
        "file.hash.sha256",
        "process.hash.md5",
        "process.hash.sha1",
        "process.hash.sha256",
    ),
    "domain": ("dns.question.name", "url.domain", "destination.domain", "source.domain"),
    "url": ("url.full", "url.original"),
}
OBSERVABLE_TYPES = tuple(OBSERVABLE_FIELDS)
MAX_OBSERVABLE = 1000
# ATT&CK technique / tactic tags → Decision 05/2017 group (data; the policy may override).
DEFAULT_ATTACK_GROUPS: dict[str, str] = {
    "attack.t1498": "A1",
    "attack.t1499": "A1",
    "attack.t1566": "A2",
    "attack.t1656": "A2",
    "attack.t1491": "A5",
    "attack.t1486": "A6",
    "attack.t1485": "A7",
    "attack.t1561": "A7",
    "attack.t1490": "A7",
    "attack.credential_access": "A4",
    "attack.initial_access": "A4",
    "attack.privilege_escalation": "A4",
    "attack.lateral_movement": "A4",
    "attack.persistence": "A4",
    "attack.execution": "A3",
    "attack.defense_evasion": "A3",
    "attack.command_and_control": "A3",
    "attack.collection": "A8",
    "attack.exfiltration": "A8",
    "attack.discovery": "A8",
    "attack.reconnaissance": "A8",
    "attack.impact": "A7",
}
DEFAULT_SERIOUS_WHEN: list[dict[str, Any]] = [
    {"severity": ["critical"]},
    {"severity": ["high", "critical"], "min_level": 3},
]


# PostgreSQL advisory lock serialising audit appends (see `record_audit`).
AUDIT_LOCK_KEY = 0x736F636D6175  # "socmau"


def record_audit(
    session: Session, actor: str, action: str, object_type: str, object_id: object, **detail: Any
) -> None:
    """`audit.record`, serialised across transactions on PostgreSQL.

    `audit.record` reads the last record `FOR UPDATE` and chains onto it; under READ
    COMMITTED two writers (or two on an empty log) can both chain onto the same record,
    forking the chain. A transaction-scoped advisory lock taken first makes the read see the
    other writer's committed record. SQLite serialises writers itself (the callers here
    write before auditing, so they already hold the write lock).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
    audit.record(session, actor, action, object_type, object_id, **detail)


class IncidentError(SocmonError):
    """A refused incident operation; `status` is the HTTP status the API answers with."""

    def __init__(self, msg: str, status: int = 422, code: str = "invalid_request") -> None:
        super().__init__(msg)
        self.status, self.code = status, code


class SeriousWhen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    severity: list[str]
    min_level: int | None = Field(default=None, ge=1, le=5)


class IncidentPolicy(BaseModel):
    """How alerts become incidents: windows, group mapping, response-path rule.

    Built from a dict (`IncidentPolicy.model_validate(settings.incident_policy)`)::

        {"window_seconds": 3600,
         "rule_windows": {"<rule id>": 600},         # wins over tags
         "tag_windows": {"attack.t1110": 7200},      # the longest matching tag wins
         "rule_groups": {"<rule id>": "B4"},         # wins over socmon.group.xx tags
         "attack_groups": {"attack.impact": "A7"},   # laid over DEFAULT_ATTACK_GROUPS
         "serious_when": [{"severity": ["critical"]},
                          {"severity": ["high", "critical"], "min_level": 3}]}
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    window_seconds: int = Field(default=3600, ge=1)
    rule_windows: dict[str, int] = Field(default_factory=dict)
    tag_windows: dict[str, int] = Field(default_factory=dict)
    rule_groups: dict[str, str] = Field(default_factory=dict)
    attack_groups: dict[str, str] = Field(default_factory=dict)
    serious_when: list[SeriousWhen] = Field(
        default_factory=lambda: [SeriousWhen.model_validate(x) for x in DEFAULT_SERIOUS_WHEN]
    )

    @field_validator("rule_windows", "tag_windows")
    @classmethod
    def _positive(cls, v: dict[str, int]) -> dict[str, int]:
        bad = [k for k, s in v.items() if s < 1]
        if bad:
            raise ValueError(f"windows must be >= 1 second: {', '.join(bad)}")
        return {k.lower() if k.startswith(("attack.", "socmon.")) else k: s for k, s in v.items()}

    @field_validator("rule_groups", "attack_groups")
    @classmethod
    def _groups(cls, v: dict[str, str]) -> dict[str, str]:
        out = {k: g.upper() for k, g in v.items()}
        bad = sorted({g for g in out.values() if g not in INCIDENT_CATEGORY})
        if bad:
            raise ValueError(f"unknown incident groups {bad}; known: A1-A9, B1-B5, C1-C5")
        return out

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any] | None, *, window_seconds: int | None = None
    ) -> IncidentPolicy:
        """The policy of a settings dict; `window_seconds` (e.g. the older
        `incident_window_seconds` setting) is the default window unless the dict sets one."""
        merged: dict[str, Any] = {}
        if window_seconds is not None:
            merged["window_seconds"] = window_seconds
        merged.update(data or {})
        return cls.model_validate(merged)

    def window_for(self, rule_id: str, tags: Sequence[str]) -> int:
        """Window in seconds: the rule's, else the longest of its tags', else the default."""
        if rule_id in self.rule_windows:
            return self.rule_windows[rule_id]
        matching = [self.tag_windows[t.lower()] for t in tags if t.lower() in self.tag_windows]
        return max(matching) if matching else self.window_seconds

    def group_for(self, rule_id: str, tags: Sequence[str]) -> str | None:
        if rule_id in self.rule_groups:
            return self.rule_groups[rule_id]
        found = category_from_tags(tags)
        if found:
            return found
        table = {**DEFAULT_ATTACK_GROUPS, **self.attack_groups}
        lowered = [t.lower() for t in tags]
        # Techniques (attack.t1486) before tactics (attack.impact); tag order within each.
        techniques = [t for t in lowered if t[7:8] == "t" and t[8:9].isdigit()]
        for tag in techniques + [t for t in lowered if t not in techniques]:
            code = table.get(tag) or table.get(".".join(tag.split(".")[:2]))  # t1110.001
            if code:
                return code
        return None

    def path_for(self, severity: str, level: int | None) -> str:
        for rule in self.serious_when:
            if severity in rule.severity and (
                rule.min_level is None or (level is not None and level >= rule.min_level)
            ):
                return "serious"
        return "normal"


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


def response_path(severity: str, level: int | None = None) -> str:
    """The default policy's path (see `IncidentPolicy.path_for`)."""
    return IncidentPolicy().path_for(severity, level)


def group_key(rule_id: str, group_fields: Mapping[str, Any]) -> str:
    body = orjson.dumps([rule_id, group_fields], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


def extract_observables(alert: Mapping[str, Any]) -> list[list[str]]:
    """[[type, value], ...] of an alert's ECS fields, each pair once."""
    seen: dict[tuple[str, str], None] = {}
    for kind, fields in OBSERVABLE_FIELDS.items():
        for f in fields:
            value = get_field(alert, f)
            for v in value if isinstance(value, list) else [value]:
                if v is None or v == "" or isinstance(v, (dict, list)):
                    continue
                text = str(v)[:MAX_OBSERVABLE]  # NUL already escaped (without_nul)
                if kind in ("domain", "host", "hash"):
                    text = text.lower()
                seen.setdefault((kind, text), None)
    return [[k, v] for k, v in seen]


def _tags(alert: Mapping[str, Any]) -> list[str]:
    tags = get_field(alert, "socmon.alert.tags") or get_field(alert, "tags") or []
    return [str(t) for t in (tags if isinstance(tags, list) else [tags])]


def _level(alert: Mapping[str, Any]) -> int | None:
    value = get_field(alert, "socmon.level")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _state_secret(alert: Mapping[str, Any]) -> bool:
    return any(
        get_field(alert, f"socmon.{side}.state_secret") is True
        for side in ("source", "destination", "observer")
    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def suppression_matches(match: Mapping[str, Any], alert: Mapping[str, Any]) -> bool:
    """Every field of `match` equals (or, for a list, contains) the alert's value."""
    for field, wanted in match.items():
        have = [str(v) for v in _as_list(get_field(alert, field)) if v is not None]
        if not have or not any(str(w) in have for w in _as_list(wanted)):
            return False
    return True


def without_nul(value: Any) -> Any:
    """`value` with every NUL character of its strings (keys included) written as the text
    `\\x00`: PostgreSQL cannot store NUL in text or JSON, and an attacker controls many alert
    fields (a user name, a command line). The fact stays visible; nothing is dropped."""
    if isinstance(value, str):
        return value.replace("\x00", "\\x00") if "\x00" in value else value
    if isinstance(value, Mapping):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(v) for v in value]
    return value


OpenedCallback = Callable[[Incident], None]
# (session, incident, {field: [old, new]}), in the transaction of the change.
ChangeCallback = Callable[[Session, Incident, dict[str, Any]], None]


def _forget_opened(session: Session, _previous: Any) -> None:
    """A rolled-back transaction opened nothing: its incidents are never announced."""
    session.info.pop("socmon_opened", None)


class IncidentService:
    """Turns alert documents into incidents, and changes incidents on analysts' requests.

    Every change is audited (hash chain) and written to the incident's timeline, in the
    caller's transaction.
    """

    def __init__(
        self, window: timedelta | None = None, *, policy: IncidentPolicy | None = None
    ) -> None:
        if policy is None:
            seconds = int(window.total_seconds()) if window is not None else 3600
            policy = IncidentPolicy(window_seconds=max(1, seconds))
        self.policy = policy
        self._opened: list[OpenedCallback] = []
        self._changed: list[ChangeCallback] = []

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.policy.window_seconds)

    # -- listeners ---------------------------------------------------------------------------

    def on_opened(self, callback: OpenedCallback) -> None:
        """Register `callback(incident: Incident) -> None`, called once per new incident.

        Called after the transaction that opened the incident committed (never for one that
        rolled back), synchronously in the committing thread, with the `Incident` row
        (detached from any session once commit is done: read its columns, do not lazy-load
        `alerts`; open your own session to write). An exception is logged and swallowed:
        a failing listener never loses the incident. Incidents made by `split` are not
        "opened" (they come from an existing one) and do not call it.
        """
        self._opened.append(callback)

    def on_changed(self, callback: ChangeCallback) -> None:
        """Register `callback(session, incident, changes)`, called in the transaction of every
        analyst's change (`update`; `changes` is {field: [old, new]}, fields: state, severity,
        response_path, group, assignee): what it writes commits or rolls back with the change,
        and an exception it raises fails the change."""
        self._changed.append(callback)

    def _notify_after_commit(self, session: Session, incident: Incident) -> None:
        # The listeners are registered once per session and never removed (removing one while
        # SQLAlchemy runs it breaks the rollback that triggered it); they only read the list.
        if not session.info.get("socmon_listening"):
            session.info["socmon_listening"] = True
            event.listen(session, "after_commit", self._after_commit)
            event.listen(session, "after_soft_rollback", _forget_opened)
        session.info.setdefault("socmon_opened", []).append(incident)

    def _after_commit(self, session: Session) -> None:
        for inc in session.info.pop("socmon_opened", []):
            for cb in self._opened:
                try:
                    cb(inc)
                except Exception:  # a listener must not break ingestion
                    log.exception("incident listener failed %s", kv(incident=inc.id))

    # -- ingestion ---------------------------------------------------------------------------

    def ingest(self, session: Session, alert_id: str, alert: Mapping[str, Any]) -> Incident | None:
        """Attach one alert to its incident, creating the incident when none is open.

        Returns the incident, or None when an active suppression matched (the alert is then
        recorded in `suppressed_alerts`). Idempotent: an alert already attached or suppressed
        (a replay of the spool) changes nothing. A concurrent writer that took the same
        grouping slot makes the flush raise IntegrityError: roll back and retry (as
        `ingest_batch` does).
        """
        alert_id, alert = without_nul(alert_id), without_nul(alert)
        existing = session.scalar(
            select(IncidentAlert.incident_id).where(IncidentAlert.alert_id == alert_id)
        )
        if existing is not None:
            return session.get_one(Incident, existing)
        if session.scalar(select(SuppressedAlert.id).where(SuppressedAlert.alert_id == alert_id)):
            return None

        rule_id = str(get_field(alert, "rule.id") or "unknown")
        ts = parse_time(get_field(alert, "@timestamp"))
        now = datetime.now(UTC)
        unit = _plain(get_field(alert, "socmon.unit"))
        unit = str(unit) if unit is not None else None
        key_fields = {
            f: _plain(get_field(alert, f)) for f in KEY_FIELDS if get_field(alert, f) is not None
        }
        sup = self._suppression_for(session, rule_id, unit, alert, now)
        if sup is not None:
            sup.hits += 1
            sup.last_hit_at = now
            session.add(
                SuppressedAlert(
                    suppression_id=sup.id,
                    alert_id=alert_id,
                    rule_id=rule_id,
                    unit=unit,
                    ts=ts,
                    fields=key_fields,
                )
            )
            session.flush()
            return None

        group_by = get_field(alert, "socmon.alert.group_by") or []
        group_fields = {f: _plain(get_field(alert, f)) for f in _as_list(group_by)}
        key = group_key(rule_id, group_fields)
        tags = _tags(alert)
        window_s = self.policy.window_for(rule_id, tags)
        window = timedelta(seconds=window_s)
        slot = f"{key}:{window_s}:{int(ts.timestamp()) // window_s}"
        severity = str(get_field(alert, "socmon.alert.level") or "medium")
        if severity not in SEVERITY_ORDER:
            severity = "medium"
        level = _level(alert)

        incident = session.scalars(select(Incident).where(Incident.dedup_key == slot)).first()
        if incident is None or incident.status not in OPEN_STATUSES:
            incident = session.scalars(
                select(Incident)
                .where(
                    Incident.group_key == key,
                    Incident.status.in_(OPEN_STATUSES),
                    Incident.last_seen >= ts - window,
                    Incident.first_seen <= ts + window,
                )
                .order_by(Incident.last_seen.desc(), Incident.id.desc())
                .limit(1)
            ).first()
        observables = extract_observables(alert)
        if incident is None:
            incident = Incident(
                group_key=key,
                dedup_key=slot,
                rule_id=rule_id[:64],
                title=str(get_field(alert, "rule.name") or rule_id)[:500],
                severity=severity,
                status="new",
                category=self.policy.group_for(rule_id, tags),
                response_path=self.policy.path_for(severity, level),
                level=level,
                state_secret=_state_secret(alert),
                unit=unit,
                group_fields=group_fields,
                first_seen=ts,
                last_seen=ts,
                alert_count=0,
                created_at=now,
                updated_at=now,
            )
            session.add(incident)
            session.flush()  # IntegrityError here: another writer took the slot
            record_audit(
                session,
                ACTOR,
                "incident.create",
                "incident",
                incident.id,
                rule_id=rule_id,
                group=group_fields,
            )
            self._timeline(session, incident.id, ACTOR, "created", rule_id=rule_id, alert=alert_id)
            self._notify_after_commit(session, incident)
        else:
            # Atomic SQL updates: concurrent writers of one storm must not lose increments
            # (SQLite's driver reads outside the write transaction; PostgreSQL re-evaluates
            # the expressions on the locked row).
            values: dict[str, Any] = {
                "alert_count": Incident.alert_count + 1,
                "first_seen": case((Incident.first_seen > ts, ts), else_=Incident.first_seen),
                "last_seen": case((Incident.last_seen < ts, ts), else_=Incident.last_seen),
                "updated_at": now,
                "severity": case(
                    (
                        and_(
                            Incident.severity_manual.is_(False),
                            SEVERITY_RANK < SEVERITY_ORDER.index(severity),  # noqa: SIM300
                        ),
                        severity,
                    ),
                    else_=Incident.severity,
                ),
            }
            if level is not None:
                values["level"] = case(
                    (or_(Incident.level.is_(None), Incident.level < level), level),
                    else_=Incident.level,
                )
            if _state_secret(alert):
                values["state_secret"] = True
            category = self.policy.group_for(rule_id, tags)
            if category is not None:
                values["category"] = func.coalesce(Incident.category, category)
            session.execute(
                update(Incident)
                .where(Incident.id == incident.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            session.refresh(incident)  # read under the write lock now held
            path = self.policy.path_for(incident.severity, incident.level)
            if path != incident.response_path:
                incident.response_path = path
        if incident.alert_count == 0:
            incident.alert_count = 1
        session.add(
            IncidentAlert(
                incident_id=incident.id,
                alert_id=alert_id,
                event_id=str(get_field(alert, "socmon.alert.event_id") or "")[:64],
                rule_id=rule_id[:64],
                ts=ts,
                fields=key_fields,
                observables=observables,
                level=severity,
            )
        )
        self._add_observables(session, incident.id, observables, ts)
        self._timeline(session, incident.id, ACTOR, "alert_added", alert=alert_id, rule_id=rule_id)
        session.flush()
        return incident

    def ingest_batch(
        self, db: Database, items: Iterable[tuple[str, Mapping[str, Any]]], *, attempts: int = 20
    ) -> int:
        """Ingest `(alert_id, alert)` pairs in one transaction, retried on a lost race.

        A unique-slot or alert-id conflict (IntegrityError) or a busy SQLite database
        (OperationalError) rolls the whole transaction back; ingesting is idempotent, so the
        retry attaches to the incident the other writer opened. Returns the alerts handled.
        """
        batch = list(items)
        for attempt in range(attempts):
            try:
                with db.session() as session:
                    for alert_id, alert in batch:
                        self.ingest(session, alert_id, alert)
                return len(batch)
            except (IntegrityError, OperationalError) as e:
                if attempt == attempts - 1:
                    raise
                log.debug("incident ingest retried %s", kv(error=str(e).splitlines()[0]))
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        return 0

    def _suppression_for(
        self,
        session: Session,
        rule_id: str,
        unit: str | None,
        alert: Mapping[str, Any],
        now: datetime,
    ) -> Suppression | None:
        rows = session.scalars(
            select(Suppression)
            .where(Suppression.rule_id == rule_id, Suppression.expires_at > now)
            .order_by(Suppression.id)
        )
        for sup in rows:
            if (sup.unit is None or sup.unit == unit) and suppression_matches(sup.match, alert):
                return sup
        return None

    def _add_observables(
        self, session: Session, incident_id: int, pairs: Sequence[Sequence[str]], ts: datetime
    ) -> None:
        if not pairs:
            return
        known = {
            (o.type, o.value): o
            for o in session.scalars(
                select(IncidentObservable).where(
                    IncidentObservable.incident_id == incident_id,
                    IncidentObservable.value.in_([p[1] for p in pairs]),
                )
            )
        }
        for kind, value in pairs:
            obs = known.get((kind, value))
            if obs is None:
                obs = IncidentObservable(
                    incident_id=incident_id,
                    type=kind,
                    value=value,
                    first_seen=ts,
                    last_seen=ts,
                    count=1,
                )
                session.add(obs)
                known[(kind, value)] = obs
            else:
                session.execute(
                    update(IncidentObservable)
                    .where(IncidentObservable.id == obs.id)
                    .values(
                        count=IncidentObservable.count + 1,
                        first_seen=case(
                            (IncidentObservable.first_seen > ts, ts),
                            else_=IncidentObservable.first_seen,
                        ),
                        last_seen=case(
                            (IncidentObservable.last_seen < ts, ts),
                            else_=IncidentObservable.last_seen,
                        ),
                    )
                    .execution_options(synchronize_session=False)
                )

    def _rebuild_observables(self, session: Session, incident_id: int) -> None:
        session.execute(
            delete(IncidentObservable).where(IncidentObservable.incident_id == incident_id)
        )
        session.flush()
        rows = session.execute(
            select(IncidentAlert.observables, IncidentAlert.ts).where(
                IncidentAlert.incident_id == incident_id
            )
        ).all()
        acc: dict[tuple[str, str], IncidentObservable] = {}
        for pairs, ts in rows:
            ts = parse_time(ts)
            for kind, value in pairs or []:
                obs = acc.get((kind, value))
                if obs is None:
                    acc[(kind, value)] = IncidentObservable(
                        incident_id=incident_id,
                        type=kind,
                        value=value,
                        first_seen=ts,
                        last_seen=ts,
                        count=1,
                    )
                else:
                    obs.count += 1
                    obs.first_seen = min(parse_time(obs.first_seen), ts)
                    obs.last_seen = max(parse_time(obs.last_seen), ts)
        session.add_all(acc.values())

    def _timeline(
        self, session: Session, incident_id: int, actor: str, kind: str, **detail: Any
    ) -> None:
        session.add(
            IncidentEvent(
                incident_id=incident_id,
                ts=datetime.now(UTC),
                actor=actor,
                kind=kind,
                detail=detail,
            )
        )

    def _refresh_from_alerts(self, session: Session, inc: Incident) -> None:
        """Count, time span, level and (unless set by hand) severity from the alerts."""
        count, first, last = session.execute(
            select(
                func.count(IncidentAlert.id), func.min(IncidentAlert.ts), func.max(IncidentAlert.ts)
            ).where(IncidentAlert.incident_id == inc.id)
        ).one()
        inc.alert_count = int(count or 0)
        if first is not None:
            inc.first_seen, inc.last_seen = parse_time(first), parse_time(last)
        levels = session.scalars(
            select(IncidentAlert.level).where(IncidentAlert.incident_id == inc.id).distinct()
        ).all()
        if levels and not inc.severity_manual:
            inc.severity = max((lv or "medium" for lv in levels), key=_sev_index)
        sys_levels = [
            _int_or_none(f.get("socmon.level"))
            for f in session.scalars(
                select(IncidentAlert.fields).where(IncidentAlert.incident_id == inc.id)
            )
        ]
        known = [lv for lv in sys_levels if lv is not None]
        inc.level = max(known) if known else None
        inc.response_path = self.policy.path_for(inc.severity, inc.level)

    # -- analyst actions ---------------------------------------------------------------------

    def update(
        self,
        session: Session,
        inc: Incident,
        actor: str,
        *,
        state: str | None = None,
        severity: str | None = None,
        group: str | None = None,
        assignee: User | None = None,
        unassign: bool = False,
        can_work: Callable[[User, Incident], bool] | None = None,
    ) -> dict[str, Any]:
        """Apply the given changes; returns {field: [old, new]} of what changed.

        `can_work(user, incident)` says whether the assignee may see and work the incident
        (the API passes its role and scope rules); by default the assignee's units must
        include the incident's (or be `*`).
        Raises IncidentError: 422 for an unknown value, 409 for a forbidden transition.
        """
        changes: dict[str, Any] = {}
        if state is not None and state != inc.status:
            if state not in INCIDENT_STATUS:
                raise IncidentError(f"unknown state {state!r}")
            if inc.merged_into_id is not None:
                raise IncidentError(
                    f"incident {inc.id} was merged into {inc.merged_into_id}", 409, "conflict"
                )
            if state not in TRANSITIONS.get(inc.status, ()):
                allowed = ", ".join(TRANSITIONS.get(inc.status, ())) or "none"
                raise IncidentError(
                    f"state change {inc.status} -> {state} is not allowed (allowed: {allowed})",
                    409,
                    "invalid_transition",
                )
            changes["state"] = [inc.status, state]
            inc.status = state
            if state in CLOSED_STATUSES:
                inc.dedup_key = None  # later alerts open a new incident
        if severity is not None and (severity != inc.severity or not inc.severity_manual):
            if severity not in SEVERITY_ORDER:
                raise IncidentError(f"unknown severity {severity!r}")
            if severity != inc.severity:
                changes["severity"] = [inc.severity, severity]
            inc.severity, inc.severity_manual = severity, True
            path = self.policy.path_for(severity, inc.level)
            if path != inc.response_path:
                changes["response_path"] = [inc.response_path, path]
                inc.response_path = path
        if group is not None and group != inc.category:
            code = group.upper()
            if code not in INCIDENT_CATEGORY:
                raise IncidentError(f"unknown incident group {group!r}")
            if code != inc.category:
                changes["group"] = [inc.category, code]
                inc.category = code
        if unassign and inc.assignee_id is not None:
            changes["assignee"] = [inc.assignee_id, None]
            inc.assignee_id = None
        elif assignee is not None and assignee.id != inc.assignee_id:
            if assignee.disabled:
                raise IncidentError(f"user {assignee.id} is disabled")
            units = {str(u) for u in assignee.units or []}
            may_work = (
                can_work(assignee, inc)
                if can_work is not None
                else "*" in units or (inc.unit is not None and inc.unit in units)
            )
            if not may_work:
                raise IncidentError(
                    f"user {assignee.name!r} cannot see or work this incident (unit {inc.unit!r})"
                )
            changes["assignee"] = [inc.assignee_id, assignee.id]
            inc.assignee_id = assignee.id
        if changes:
            inc.updated_at = datetime.now(UTC)
            for name, (old, new) in changes.items():
                self._timeline(session, inc.id, actor, f"{name}_changed", old=old, new=new)
            record_audit(session, actor, "incident.update", "incident", inc.id, **changes)
            session.flush()
            for cb in self._changed:
                cb(session, inc, changes)
        return changes

    def comment(self, session: Session, inc: Incident, actor: str, body: str) -> IncidentComment:
        body = body.strip()
        if not body:
            raise IncidentError("a comment needs text")
        c = IncidentComment(incident_id=inc.id, ts=datetime.now(UTC), author=actor, body=body)
        session.add(c)
        session.flush()
        inc.updated_at = c.ts
        self._timeline(session, inc.id, actor, "comment", comment_id=c.id)
        record_audit(session, actor, "incident.comment", "incident", inc.id, comment_id=c.id)
        session.flush()
        return c

    def merge(self, session: Session, target: Incident, source: Incident, actor: str) -> None:
        """Move `source`'s alerts, observables, comments and timeline into `target`; close
        `source` as merged, pointing to `target`."""
        if target.id == source.id:
            raise IncidentError("cannot merge an incident into itself")
        if source.merged_into_id is not None:
            raise IncidentError(f"incident {source.id} was already merged", 409, "conflict")
        if target.merged_into_id is not None:
            raise IncidentError(f"incident {target.id} was merged itself", 409, "conflict")
        moved = session.scalar(
            select(func.count(IncidentAlert.id)).where(IncidentAlert.incident_id == source.id)
        )
        for model in (IncidentAlert, IncidentComment, IncidentEvent):
            session.execute(
                update(model).where(model.incident_id == source.id).values(incident_id=target.id)
            )
        session.execute(
            delete(IncidentObservable).where(IncidentObservable.incident_id == source.id)
        )
        if source.state_secret:
            target.state_secret = True
        if target.category is None:
            target.category = source.category
        self._refresh_from_alerts(session, target)
        self._rebuild_observables(session, target.id)
        now = datetime.now(UTC)
        old_state = source.status
        source.status, source.merged_into_id, source.dedup_key = "closed", target.id, None
        source.alert_count, source.updated_at, target.updated_at = 0, now, now
        self._timeline(session, target.id, actor, "merged", source=source.id, alerts=moved)
        self._timeline(
            session, source.id, actor, "merged_into", target=target.id, old_state=old_state
        )
        record_audit(
            session,
            actor,
            "incident.merge",
            "incident",
            target.id,
            source=source.id,
            alerts=moved,
        )
        session.flush()

    def split(
        self,
        session: Session,
        inc: Incident,
        alert_ids: Sequence[str],
        actor: str,
        *,
        title: str | None = None,
    ) -> Incident:
        """Move the given alerts of `inc` into a new incident (same rule, unit, group)."""
        wanted = sorted(set(alert_ids))
        if not wanted:
            raise IncidentError("give the alert ids to split off")
        rows = session.scalars(
            select(IncidentAlert).where(
                IncidentAlert.incident_id == inc.id, IncidentAlert.alert_id.in_(wanted)
            )
        ).all()
        missing = sorted(set(wanted) - {r.alert_id for r in rows})
        if missing:
            raise IncidentError(f"alerts not in incident {inc.id}: {', '.join(missing[:10])}")
        if len(rows) >= inc.alert_count:
            raise IncidentError("a split must leave at least one alert in the incident")
        now = datetime.now(UTC)
        new = Incident(
            group_key=hashlib.sha256(f"{inc.group_key}:split:{uuid.uuid4()}".encode()).hexdigest(),
            dedup_key=None,
            rule_id=inc.rule_id,
            title=(title or f"{inc.title} (split from #{inc.id})")[:500],
            severity=inc.severity,
            severity_manual=False,
            status="new",
            category=inc.category,
            response_path=inc.response_path,
            level=inc.level,
            state_secret=inc.state_secret,
            unit=inc.unit,
            group_fields=inc.group_fields,
            first_seen=now,
            last_seen=now,
            alert_count=0,
            created_at=now,
            updated_at=now,
        )
        session.add(new)
        session.flush()
        session.execute(
            update(IncidentAlert)
            .where(IncidentAlert.id.in_([r.id for r in rows]))
            .values(incident_id=new.id)
        )
        session.expire_all()
        for i in (inc, new):
            self._refresh_from_alerts(session, i)
            self._rebuild_observables(session, i.id)
        inc.updated_at = now
        self._timeline(session, inc.id, actor, "split", new_incident=new.id, alerts=wanted)
        self._timeline(session, new.id, actor, "split_from", incident=inc.id, alerts=wanted)
        record_audit(
            session, actor, "incident.split", "incident", inc.id, new_incident=new.id, alerts=wanted
        )
        session.flush()
        return new


def _sev_index(severity: str | None) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else 2


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


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
        alerts = [orjson.loads(rec.payload) for rec in records]
        self.service.ingest_batch(self.db, [(str(a.get("_id")), a) for a in alerts])


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
                ids = [hit["_id"] for hit in hits]
                known = set(
                    session.scalars(
                        select(IncidentAlert.alert_id).where(IncidentAlert.alert_id.in_(ids))
                    )
                ) | set(
                    session.scalars(
                        select(SuppressedAlert.alert_id).where(SuppressedAlert.alert_id.in_(ids))
                    )
                )
            fresh = [(hit["_id"], hit["_source"]) for hit in hits if hit["_id"] not in known]
            if fresh:
                new += self.service.ingest_batch(self.db, fresh)
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
