"""ORM models of the SOC's working state (tables created by socmon/migrations)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from socmon.db import Base

TZDateTime = DateTime(timezone=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    units: Mapped[list[Any]]  # owner-unit codes this user may see; ["*"] = every unit
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(TZDateTime)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(TZDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(TZDateTime, default=None)
    revoked: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User] = relationship(lazy="joined")


class AuditRecord(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    ts: Mapped[datetime] = mapped_column(TZDateTime)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (  # the list pages: a unit's newest, a state's newest (migration 0007)
        Index("ix_incidents_unit_last_seen", "unit", "last_seen"),
        Index("ix_incidents_status_last_seen", "status", "last_seen"),
        Index("ix_incidents_unit_status_last_seen", "unit", "status", "last_seen"),  # 0010
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    group_key: Mapped[str] = mapped_column(String(64), index=True)
    rule_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32), index=True)
    category: Mapped[str | None] = mapped_column(String(8))
    response_path: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str | None] = mapped_column(String(64), index=True)
    group_fields: Mapped[dict[str, Any]]
    first_seen: Mapped[datetime] = mapped_column(TZDateTime)
    last_seen: Mapped[datetime] = mapped_column(TZDateTime, index=True)
    alert_count: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(TZDateTime)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime)
    # The grouping slot `<group_key>:<window seconds>:<window index>`, unique: concurrent
    # writers of one alert storm cannot open two incidents. Released (NULL) on close.
    dedup_key: Mapped[str | None] = mapped_column(
        String(120), unique=True, index=True, default=None
    )
    # Highest security level (cấp độ 1-5) of the affected systems seen in the alerts.
    level: Mapped[int | None] = mapped_column(Integer, default=None)
    severity_manual: Mapped[bool] = mapped_column(default=False)  # set by an analyst: kept
    # An alert touched a system flagged state-secret (hidden from provider analysts).
    state_secret: Mapped[bool] = mapped_column(default=False)
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), default=None
    )

    alerts: Mapped[list[IncidentAlert]] = relationship(
        back_populates="incident", cascade="all, delete-orphan", lazy="raise"
    )


class IncidentAlert(Base):
    """The key fields of one alert, copied so incidents survive the loss of the event store."""

    __tablename__ = "incident_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    alert_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_id: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(TZDateTime)
    fields: Mapped[dict[str, Any]]
    # [[type, value], ...] extracted from the alert (rebuilds observables on merge/split).
    observables: Mapped[list[Any] | None] = mapped_column(default=None)
    level: Mapped[str | None] = mapped_column(String(16), default=None)

    incident: Mapped[Incident] = relationship(back_populates="alerts")


class IncidentObservable(Base):
    """An IP, host, user, hash, domain or URL seen in an incident's alerts (one row per value)."""

    __tablename__ = "incident_observables"
    __table_args__ = (
        UniqueConstraint("incident_id", "type", "value"),
        Index("ix_incident_observables_type_value", "type", "value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(1000))
    first_seen: Mapped[datetime] = mapped_column(TZDateTime)
    last_seen: Mapped[datetime] = mapped_column(TZDateTime)
    count: Mapped[int]


class IncidentEvent(Base):
    """One entry of an incident's timeline: created, alert added, comment, change, merge."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    ts: Mapped[datetime] = mapped_column(TZDateTime)
    actor: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]]


class IncidentComment(Base):
    __tablename__ = "incident_comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    ts: Mapped[datetime] = mapped_column(TZDateTime)
    author: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)


class Suppression(Base):
    """Alerts of `rule_id` whose fields equal `match` are recorded, not opened as incidents.

    `unit` NULL applies to every unit; otherwise only to alerts of that owner unit.
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(255), index=True)
    match: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    expires_at: Mapped[datetime] = mapped_column(TZDateTime)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(TZDateTime)
    hits: Mapped[int] = mapped_column(default=0)
    last_hit_at: Mapped[datetime | None] = mapped_column(TZDateTime, default=None)


class SuppressedAlert(Base):
    """An alert that matched an active suppression (kept for review, never an incident)."""

    __tablename__ = "suppressed_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    suppression_id: Mapped[int | None] = mapped_column(
        ForeignKey("suppressions.id", ondelete="SET NULL"), index=True
    )
    alert_id: Mapped[str] = mapped_column(String(64), unique=True)
    rule_id: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str | None] = mapped_column(String(64), default=None)
    ts: Mapped[datetime] = mapped_column(TZDateTime)
    fields: Mapped[dict[str, Any]]
