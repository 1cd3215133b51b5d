"""ORM models of playbook runs and their tasks (tables created by migration 0005)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from socmon.db import Base

TZDateTime = DateTime(timezone=True)

TASK_STATES = ("open", "done", "skipped")


class PlaybookRun(Base):
    """One playbook instantiated for one incident (at most one run per incident and playbook)."""

    __tablename__ = "playbook_runs"
    __table_args__ = (UniqueConstraint("incident_id", "playbook_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    playbook_id: Mapped[str] = mapped_column(String(64))
    group: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(16))
    regime: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | done
    opened_at: Mapped[datetime] = mapped_column(TZDateTime)  # the incident's open time
    created_at: Mapped[datetime] = mapped_column(TZDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(TZDateTime, default=None)

    tasks: Mapped[list[PlaybookTask]] = relationship(
        back_populates="run",
        cascade="all, delete-orphan",
        order_by="PlaybookTask.position",
        lazy="selectin",
    )


class PlaybookTask(Base):
    """One task of a run: owner role, due time (opened + SLA), state open → done / skipped."""

    __tablename__ = "playbook_tasks"
    __table_args__ = (UniqueConstraint("run_id", "task_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("playbook_runs.id", ondelete="CASCADE"), index=True
    )
    task_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # manual | action | report
    title: Mapped[dict[str, Any]]  # {"vi": ..., "en": ...}
    owner_role: Mapped[str] = mapped_column(String(32))
    sla_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    # NULL while the deadline's anchor is unknown (a report due after the response ends).
    due_at: Mapped[datetime | None] = mapped_column(TZDateTime, index=True, default=None)
    status: Mapped[str] = mapped_column(String(16), default="open")
    done_by: Mapped[str | None] = mapped_column(String(120), default=None)
    done_at: Mapped[datetime | None] = mapped_column(TZDateTime, default=None)
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    spec: Mapped[dict[str, Any]]  # the resolved task definition (action / report details)
    result: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    breached_at: Mapped[datetime | None] = mapped_column(TZDateTime, default=None)

    run: Mapped[PlaybookRun] = relationship(back_populates="tasks")
