"""The engine over a real migrated database: instantiate, persist, transitions, audit,
reporting deadlines from the regime, the incidents hook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from playbooks.engine import (
    PlaybookEngine,
    TaskForbidden,
    TaskStateError,
    attach,
    instantiate,
)
from playbooks.errors import PlaybookError
from playbooks.models import PlaybookRun, PlaybookTask
from soc_api import audit
from soc_api.incidents import IncidentService
from soc_api.models import AuditRecord, Incident
from socmon.db import Database
from tests.playbooks.conftest import attack_alert, open_incident

NOV = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # Decree 331 regime in force
MARCH = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)  # before it: Circular 20 regime


def by_id(run: PlaybookRun) -> dict[str, PlaybookTask]:
    return {t.task_id: t for t in run.tasks}


def as_utc(dt: datetime | None) -> datetime | None:
    return dt if dt is None or dt.tzinfo else dt.replace(tzinfo=UTC)


def test_serious_a4_run_has_owner_roles_due_times_and_regime_duties(db: Database) -> None:
    iid = open_incident(db, group="a4", level="critical", created_at=NOV)
    with db.session() as s:
        inc = s.get_one(Incident, iid)
        assert (inc.category, inc.response_path) == ("A4", "serious")
        run = instantiate(inc, s)
        run_id = run.id
    with db.session() as s:  # persisted: read back in a new session
        run = s.get_one(PlaybookRun, run_id)
        assert (run.playbook_id, run.group, run.path, run.regime) == (
            "a4-serious",
            "A4",
            "serious",
            "nd331",
        )
        assert run.unit == "so-tttt" and run.status == "open"
        tasks = by_id(run)
        triage = tasks["a-triage"]
        assert triage.owner_role == "analyst" and triage.status == "open"
        assert as_utc(triage.due_at) == NOV + timedelta(minutes=30)
        assert as_utc(tasks["a-lessons"].due_at) == NOV + timedelta(days=7)
        assert tasks["a-block-source"].kind == "action"
        # Reporting duties: the 2026 regime plus the Circular 20 duties it keeps.
        assert as_utc(tasks["report-serious-notice-24h"].due_at) == NOV + timedelta(hours=24)
        assert as_utc(tasks["report-72h"].due_at) == NOV + timedelta(hours=72)
        assert as_utc(tasks["report-incident-notice"].due_at) == NOV + timedelta(days=5)
        assert as_utc(tasks["report-initial"].due_at) == NOV + timedelta(hours=1)
        assert tasks["report-end"].due_at is None  # anchored at the end of the response
        report = tasks["report-72h"].spec["report"]
        assert report["regime"] == "nd331" and report["control"] == "ND331.INCIDENT.REPORT_72H"
        assert report["recipients"][0]["en"] == "MPS specialised cybersecurity unit"
        assert [t.position for t in run.tasks] == sorted(t.position for t in run.tasks)


def test_normal_path_under_the_old_regime_has_only_its_duties(db: Database) -> None:
    iid = open_incident(db, group="b2", level="medium", created_at=MARCH, rule="r-link")
    with db.session() as s:
        run = instantiate(s.get_one(Incident, iid), s)
        tasks = by_id(run)
        assert (run.playbook_id, run.regime) == ("b2-normal", "nd85")
        assert "report-72h" not in tasks and "report-serious-notice-24h" not in tasks
        assert "report-initial" not in tasks  # serious path only
        assert as_utc(tasks["report-incident-notice"].due_at) == MARCH + timedelta(days=5)
        assert tasks["report-incident-notice"].spec["report"]["form"]["vi"].startswith("Thông báo")
        assert "b2-failover-link" in tasks and "escalate-leadership" not in tasks


def test_instantiate_is_idempotent_and_needs_a_group(db: Database) -> None:
    iid = open_incident(db, created_at=NOV)
    engine = PlaybookEngine()
    with db.session() as s:
        first = engine.instantiate(s.get_one(Incident, iid), s)
        again = engine.instantiate(s.get_one(Incident, iid), s)
        assert first.id == again.id
        assert s.scalar(select(PlaybookRun.id).where(PlaybookRun.incident_id == iid)) == first.id
    with db.session() as s:
        inc = s.get_one(Incident, iid)
        inc.category = None
        with pytest.raises(PlaybookError, match="no incident group"):
            engine.instantiate(inc, s)
        s.rollback()
    with db.session() as s:
        created = s.scalars(
            select(AuditRecord).where(AuditRecord.action == "playbook.run.create")
        ).all()
        assert len(created) == 1 and created[0].detail["playbook"] == "a4-serious"


def test_transitions_by_owner_role_or_admin_with_who_and_when(db: Database) -> None:
    iid = open_incident(db, created_at=NOV)
    engine = PlaybookEngine()
    when = NOV + timedelta(minutes=20)
    with db.session() as s:
        run = engine.instantiate(s.get_one(Incident, iid), s)
        tasks = by_id(run)
        triage = tasks["a-triage"]
        with pytest.raises(TaskForbidden, match="analyst role"):
            engine.transition(s, triage, "done", actor="bob", role="sysadmin")
        engine.transition(s, triage, "done", actor="an", role="analyst", comment="ok", now=when)
        assert (triage.status, triage.done_by, as_utc(triage.done_at)) == ("done", "an", when)
        with pytest.raises(TaskStateError, match="already done"):
            engine.transition(s, triage, "skipped", actor="an", role="analyst", comment="x")
        with pytest.raises(TaskStateError, match="comment"):
            engine.transition(s, tasks["a-scope"], "skipped", actor="an", role="analyst")
        with pytest.raises(TaskStateError, match="done or skipped"):
            engine.transition(s, tasks["a-scope"], "open", actor="an", role="analyst")
        engine.transition(
            s, tasks["a-lessons"], "skipped", actor="root", role="admin", comment="drill"
        )
        for t in run.tasks:
            if t.status == "open":
                engine.transition(s, t, "done", actor="root", role="admin")
        assert run.status == "done" and run.closed_at is not None
    with db.session() as s:
        actions = [
            (r.action, r.actor, r.detail.get("task"))
            for r in s.scalars(select(AuditRecord).order_by(AuditRecord.id))
            if r.action.startswith("playbook.task.")
        ]
        assert actions[0] == ("playbook.task.done", "an", "a-triage")
        assert ("playbook.task.skipped", "root", "a-lessons") in actions
        ok, n, _ = audit.verify(s)
        assert ok and n >= len(actions)


def test_response_end_starts_the_end_report_deadline(db: Database) -> None:
    iid = open_incident(db, created_at=NOV)
    engine = PlaybookEngine()
    ended = NOV + timedelta(days=2)
    with db.session() as s:
        run = engine.instantiate(s.get_one(Incident, iid), s)
        assert engine.response_ended(s, iid, ended) == 1
        assert as_utc(by_id(run)["report-end"].due_at) == ended + timedelta(days=5)
        assert engine.response_ended(s, iid, ended) == 0


def test_forced_regime_and_playbooks_for_every_group(db: Database) -> None:
    engine = PlaybookEngine(regime="nd85")
    for n, group in enumerate(["a1", "a9", "b4", "c3", "c5"]):
        iid = open_incident(db, group=group, level="high", created_at=NOV, rule=f"r{n}")
        with db.session() as s:
            run = engine.instantiate(s.get_one(Incident, iid), s)
            assert run.playbook_id == f"{group}-normal" and run.regime == "nd85"
            assert "report-72h" not in by_id(run)


def test_attach_registers_on_the_incident_service_hook(db: Database) -> None:
    service = IncidentService()
    attach(service, db)
    with db.session() as s:
        inc = service.ingest(s, "hook-1", attack_alert(1, group="a3", level="high"))
        assert inc is not None
        iid = inc.id
        # not yet: the hook runs after the commit
        assert s.scalar(select(PlaybookRun.id).where(PlaybookRun.incident_id == iid)) is None
    with db.session() as s:
        run = s.scalars(select(PlaybookRun).where(PlaybookRun.incident_id == iid)).one()
        assert run.playbook_id == "a3-normal"
        assert "a3-isolate-host" in by_id(run)
    with db.session() as s:  # a second alert of the same incident opens nothing new
        service.ingest(s, "hook-2", attack_alert(2, group="a3", level="high"))
    with db.session() as s:
        assert len(s.scalars(select(PlaybookRun)).all()) == 1


def test_recovery_through_the_service_starts_the_end_report_deadline(db: Database) -> None:
    """The analyst's state change (IncidentService.update) ends the response: the end-of-
    response report falls due 5 days later; an earlier state does not start it."""
    service = IncidentService()
    attach(service, db)
    with db.session() as s:
        inc = service.ingest(s, "end-1", attack_alert(1, group="a3", level="high"))
        assert inc is not None
        iid = inc.id

    def end_report_due() -> datetime | None:
        with db.session() as s:
            run = s.scalars(select(PlaybookRun).where(PlaybookRun.incident_id == iid)).one()
            return by_id(run)["report-end"].due_at

    for state in ("investigating", "contained"):
        with db.session() as s:
            service.update(s, s.get_one(Incident, iid), "an", state=state)
    assert end_report_due() is None
    before = datetime.now(UTC)
    with db.session() as s:
        service.update(s, s.get_one(Incident, iid), "an", state="recovered")
    due = end_report_due()
    assert due is not None
    assert before + timedelta(days=5) <= as_utc(due) <= datetime.now(UTC) + timedelta(days=5)
    with db.session() as s:  # closing later keeps the first deadline
        service.update(s, s.get_one(Incident, iid), "an", state="closed")
    assert end_report_due() == due


def test_escalation_to_serious_starts_the_serious_playbook(db: Database) -> None:
    """Raising the severity turns the response path serious: the serious playbook's run
    starts (deadlines from the incident's opening), the normal run's open tasks are skipped
    with the reason, and both are audited."""
    service = IncidentService()
    attach(service, db)
    with db.session() as s:
        inc = service.ingest(s, "esc-1", attack_alert(1, group="a3", level="high"))
        assert inc is not None and inc.response_path == "normal"
        iid = inc.id
    with db.session() as s:
        changes = service.update(s, s.get_one(Incident, iid), "an", severity="critical")
        assert changes["response_path"] == ["normal", "serious"]
    with db.session() as s:
        runs = {
            r.playbook_id: r
            for r in s.scalars(select(PlaybookRun).where(PlaybookRun.incident_id == iid))
        }
        assert set(runs) == {"a3-normal", "a3-serious"}
        normal, serious = runs["a3-normal"], runs["a3-serious"]
        assert normal.status == "done" and serious.status == "open"
        assert {t.status for t in normal.tasks} == {"skipped"}
        assert all(t.comment == "superseded by playbook a3-serious" for t in normal.tasks)
        assert serious.opened_at == normal.opened_at
        actions = [r.action for r in s.scalars(select(AuditRecord).order_by(AuditRecord.id))]
        assert "playbook.run.superseded" in actions
    with db.session() as s:  # the same severity again changes nothing
        assert service.update(s, s.get_one(Incident, iid), "an", severity="critical") == {}
        assert len(s.scalars(select(PlaybookRun)).all()) == 2
