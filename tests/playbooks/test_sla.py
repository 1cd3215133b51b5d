"""The SLA watcher, driven by an explicit clock (no sleeping): one breach alert per overdue
open task, appended to the given sink; the APScheduler job is registered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from playbooks.engine import SLA_RULE_ID, PlaybookEngine, SlaWatcher, spool_sink
from playbooks.models import PlaybookTask
from soc_api.models import AuditRecord, Incident
from socmon.db import Database
from socmon.spool import Spool
from tests.playbooks.conftest import open_incident

OPENED = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def start_run(db: Database) -> int:
    iid = open_incident(db, created_at=OPENED)
    with db.session() as s:
        return PlaybookEngine().instantiate(s.get_one(Incident, iid), s).id


def test_breach_alerts_follow_the_clock_once_per_task(db: Database) -> None:
    run_id = start_run(db)
    alerts: list[dict[str, Any]] = []
    clock = Clock(OPENED + timedelta(minutes=29))
    watcher = SlaWatcher(db, alerts.append, clock=clock)
    assert watcher.check() == [] and alerts == []

    with db.session() as s:  # a task done in time never breaches
        done = s.scalars(
            select(PlaybookTask).where(
                PlaybookTask.run_id == run_id, PlaybookTask.task_id == "escalate-leadership"
            )
        ).one()
        PlaybookEngine().transition(s, done, "done", actor="an", role="analyst")

    clock.now = OPENED + timedelta(minutes=31)
    raised = watcher.check()
    tasks = sorted(a["socmon"]["playbook"]["task_id"] for a in raised)
    assert tasks == ["a-triage", "notify-response-team", "notify-webhook"]
    assert alerts == raised
    alert = raised[0]
    assert alert["rule"]["id"] == SLA_RULE_ID and alert["event"]["kind"] == "alert"
    assert alert["socmon"]["unit"] == "so-tttt"
    assert alert["socmon"]["playbook"]["run_id"] == run_id
    assert alert["socmon"]["playbook"]["overdue_seconds"] == 60
    assert alert["socmon"]["alert"]["level"] == "high"  # serious path
    assert watcher.check() == []  # once per task

    clock.now = OPENED + timedelta(hours=1, minutes=1)
    later = {a["socmon"]["playbook"]["task_id"] for a in watcher.check()}
    assert {"a-block-source", "report-initial"} <= later and "report-72h" not in later
    clock.now = OPENED + timedelta(days=30)
    rest = {a["socmon"]["playbook"]["task_id"] for a in watcher.check()}
    assert "report-72h" in rest and "report-end" not in rest  # no due time yet
    assert len({a["_id"] for a in alerts}) == len(alerts)
    with db.session() as s:
        breaches = s.scalars(
            select(AuditRecord).where(AuditRecord.action == "playbook.task.sla_breach")
        ).all()
        assert len(breaches) == len(alerts)
        assert (
            s.scalar(select(PlaybookTask.breached_at).where(PlaybookTask.task_id == "a-triage"))
            is not None
        )


def test_a_failing_sink_keeps_the_task_for_the_next_check(db: Database) -> None:
    start_run(db)
    clock = Clock(OPENED + timedelta(minutes=31))

    def broken(_alert: dict[str, Any]) -> None:
        raise OSError("spool full")

    with pytest.raises(OSError, match="spool full"):
        SlaWatcher(db, broken, clock=clock).check()
    with db.session() as s:
        due = {
            t.task_id
            for t in s.scalars(select(PlaybookTask))
            if t.due_at is not None and t.due_at.replace(tzinfo=UTC) < clock.now
        }
        assert (
            s.scalar(select(PlaybookTask.id).where(PlaybookTask.breached_at.is_not(None))) is None
        )
    alerts: list[dict[str, Any]] = []
    raised = SlaWatcher(db, alerts.append, clock=clock).check()
    assert {a["socmon"]["playbook"]["task_id"] for a in raised} == due and len(due) == 4


def test_alerts_reach_a_real_spool(db: Database, tmp_path: Path) -> None:
    start_run(db)
    spool = Spool(tmp_path / "alerts", consumers=["incident"])
    try:
        SlaWatcher(db, spool_sink(spool), clock=Clock(OPENED + timedelta(minutes=31))).check()
        spool.sync()
        records = spool.reader("incident").read(100)
        payloads = [orjson.loads(r.payload) for r in records]
        assert len(payloads) == 4  # the four 30-minute tasks of the serious path
        assert {p["rule"]["id"] for p in payloads} == {SLA_RULE_ID}
    finally:
        spool.close()


def test_the_scheduler_runs_the_check_on_an_interval(db: Database) -> None:
    watcher = SlaWatcher(db, lambda _a: None, interval=30)
    watcher.start()
    try:
        assert watcher.jobs() == [("playbooks:sla", 30.0)]
        watcher.start()  # idempotent
        assert len(watcher.jobs()) == 1
    finally:
        watcher.stop()
    assert watcher.jobs() == []
