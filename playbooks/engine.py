"""The playbook engine: a run per opened incident, task transitions, actions, SLA timers.

`instantiate(incident)` picks the library's playbook for the incident's group (A1–C5) and
response path, and persists a run whose tasks carry an owner role and a due time (incident
opened + SLA; a reporting duty's deadline comes from the regime in force). Tasks move
open → done / skipped once, by the owner role or an admin, audited. Actions go through the
adapters in dry-run unless executed explicitly; every run of an action is audited.
`SlaWatcher` raises an alert document when an open task passes its due time.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from detections.alerts import make_alert
from playbooks.adapters import ActionResult, AdapterRegistry
from playbooks.errors import ActionError, PlaybookError
from playbooks.library import Library, Playbook, default_library
from playbooks.models import PlaybookRun, PlaybookTask
from playbooks.regimes import Regimes, default_regimes
from playbooks.reports import LANGS, render
from soc_api.incidents import record_audit
from soc_api.models import Incident, IncidentAlert
from socmon.config import Settings
from socmon.db import Database
from socmon.logging import kv

log = logging.getLogger("socmon.playbooks")

ACTOR = "system:playbooks"
SLA_RULE_ID = "socmon-playbook-sla-breach"
EXECUTE_ROLES = frozenset({"admin", "analyst"})
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")
# Alert fields offered to action parameters (`${source.ip}`), newest alert first.
CONTEXT_FIELDS = ("source.ip", "destination.ip", "host.name", "user.name", "observer.name")
#: The list placeholder: every attacking source address of the incident (`attacking_ips`).
SOURCE_IPS = "source.ips"


class TaskForbidden(PlaybookError):
    """The caller's role may not change this task or run this action."""


class TaskStateError(PlaybookError):
    """The task is not in a state that allows the change."""


def attacking_ips(session: Session, incident_id: int) -> list[str]:
    """`${source.ips}`: the distinct `source.ip` of ALL the incident's alerts, in first-seen
    order (alert time, then arrival), keeping only addresses on the Internet.

    An address is kept when `ipaddress` says it `is_global`: private, loopback, link-local,
    shared (100.64/10), documentation, benchmarking, multicast and other reserved ranges are
    left out, so a block action never targets the province's own or unroutable addresses.
    An IPv4-mapped IPv6 address counts as its IPv4 address; garbage values are skipped.
    """
    seen: dict[str, None] = {}
    rows = session.execute(
        select(IncidentAlert.fields)
        .where(IncidentAlert.incident_id == incident_id)
        .order_by(IncidentAlert.ts, IncidentAlert.id)
        .execution_options(yield_per=1000)
    )
    for (fields,) in rows:
        value = (fields or {}).get("source.ip")
        for raw in value if isinstance(value, list) else [value]:
            if raw in (None, ""):
                continue
            try:
                ip = ipaddress.ip_address(str(raw).strip())
            except ValueError:
                continue
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            if ip.is_global and not ip.is_multicast:  # is_global keeps multicast
                seen.setdefault(str(ip), None)
    return list(seen)


def _utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class PlaybookEngine:
    """Instantiates and drives playbook runs over the SQL database."""

    def __init__(
        self,
        library: Library | None = None,
        regimes: Regimes | None = None,
        *,
        adapters: AdapterRegistry | None = None,
        regime: str | None = None,
    ) -> None:
        self.library = library or default_library()
        self.regimes = regimes or default_regimes()
        self.adapters = adapters or AdapterRegistry()
        self.regime = regime  # forced regime id; None = the one in force at open time

    # -- runs ---------------------------------------------------------------------------------

    def playbook_for(self, incident: Incident) -> Playbook:
        if not incident.category:
            raise PlaybookError(f"incident {incident.id} has no incident group (A1–C5)")
        pb = self.library.for_incident(incident.category, incident.response_path)
        if pb is None:
            raise PlaybookError(
                f"no playbook for group {incident.category} path {incident.response_path}"
            )
        return pb

    def instantiate(
        self, incident: Incident, session: Session | None = None, *, actor: str = ACTOR
    ) -> PlaybookRun:
        """The run of the incident's playbook, created (and audited) if it does not exist."""
        session = session or Session.object_session(incident)
        if session is None:
            raise PlaybookError("instantiate needs a session (the incident is detached)")
        pb = self.playbook_for(incident)
        existing = session.scalars(
            select(PlaybookRun).where(
                PlaybookRun.incident_id == incident.id, PlaybookRun.playbook_id == pb.id
            )
        ).first()
        if existing is not None:
            return existing
        opened = _utc(incident.created_at)
        regime = self.regimes.in_force(opened, self.regime)
        duties = self.regimes.duties(regime)
        run = PlaybookRun(
            incident_id=incident.id,
            playbook_id=pb.id,
            group=pb.group,
            path=pb.path,
            regime=regime.id,
            unit=incident.unit,
            status="open",
            opened_at=opened,
            created_at=_now(),
        )
        position = 0
        for t in pb.tasks:
            spec = t.to_dict()
            sla = t.sla_seconds
            due: datetime | None = opened + timedelta(seconds=sla) if sla else None
            if t.kind == "report" and t.report:
                duty = duties.get(str(t.report["duty"]))
                if duty is None or pb.path not in duty.paths:
                    continue  # not a duty of this regime or of this path
                spec["report"] = duty.to_dict() | {
                    "regime_title": dict(self.regimes.regimes[duty.regime].title)
                }
                sla = int(duty.deadline.total_seconds())
                due = opened + duty.deadline if duty.anchor == "opened" else None
            run.tasks.append(
                PlaybookTask(
                    task_id=t.id,
                    position=position,
                    phase=t.phase,
                    kind=t.kind,
                    title=dict(t.title),
                    owner_role=t.owner,
                    sla_seconds=sla,
                    due_at=due,
                    status="open",
                    spec=spec,
                )
            )
            position += 1
        session.add(run)
        session.flush()  # (incident, playbook) is unique: a concurrent twin fails here
        record_audit(
            session,
            actor,
            "playbook.run.create",
            "playbook_run",
            run.id,
            incident=incident.id,
            playbook=pb.id,
            regime=regime.id,
            tasks=len(run.tasks),
        )
        return run

    def replan(
        self, session: Session, incident: Incident, *, actor: str = ACTOR
    ) -> PlaybookRun | None:
        """After the incident's group or response path changed (escalated to serious): the run
        of the playbook that now applies, created if needed; the open tasks of its other runs
        are skipped with the reason, and those runs end. Deadlines keep counting from the
        incident's opening (the duties run from detection, not from the escalation)."""
        try:
            run = self.instantiate(incident, session, actor=actor)
        except PlaybookError as e:
            log.warning("no playbook after change %s", kv(incident=incident.id, error=e))
            return None
        now = _now()
        others = session.scalars(
            select(PlaybookRun).where(
                PlaybookRun.incident_id == incident.id,
                PlaybookRun.id != run.id,
                PlaybookRun.status == "open",
            )
        )
        for old in others:
            reason = f"superseded by playbook {run.playbook_id}"
            for task in old.tasks:
                if task.status == "open":
                    task.status, task.done_by, task.done_at = "skipped", actor, now
                    task.comment = reason
            old.status, old.closed_at = "done", now
            record_audit(
                session,
                actor,
                "playbook.run.superseded",
                "playbook_run",
                old.id,
                incident=incident.id,
                by=run.playbook_id,
            )
        session.flush()
        return run

    def on_incident_opened(self, db: Database, incident_id: int) -> PlaybookRun | None:
        """Instantiate in a session of its own (the incidents hook, after commit)."""
        with db.session() as session:
            incident = session.get(Incident, incident_id)
            if incident is None:
                return None
            if not incident.category:
                log.info("no playbook: incident has no group %s", kv(incident=incident_id))
                return None
            return self.instantiate(incident, session)

    # -- tasks --------------------------------------------------------------------------------

    def transition(
        self,
        session: Session,
        task: PlaybookTask,
        status: str,
        *,
        actor: str,
        role: str,
        comment: str | None = None,
        now: datetime | None = None,
    ) -> PlaybookTask:
        """Mark an open task done or skipped (owner role or admin), audited."""
        if status not in ("done", "skipped"):
            raise TaskStateError(f"status must be done or skipped, not {status!r}")
        if role not in (task.owner_role, "admin"):
            raise TaskForbidden(
                f"task {task.task_id} belongs to the {task.owner_role} role, not {role}"
            )
        if task.status != "open":
            raise TaskStateError(f"task {task.task_id} is already {task.status}")
        if status == "skipped" and not (comment or "").strip():
            raise TaskStateError("skipping a task needs a comment giving the reason")
        task.status = status
        task.done_by = actor
        task.done_at = now or _now()
        task.comment = comment
        run = task.run
        if all(t.status != "open" for t in run.tasks):
            run.status = "done"
            run.closed_at = task.done_at
        session.flush()
        record_audit(
            session,
            actor,
            f"playbook.task.{status}",
            "playbook_task",
            task.id,
            run=run.id,
            task=task.task_id,
            role=role,
            comment=comment,
        )
        return task

    def response_ended(self, session: Session, incident_id: int, at: datetime) -> int:
        """Start the deadlines anchored at the end of the response; returns how many."""
        n = 0
        runs = session.scalars(select(PlaybookRun).where(PlaybookRun.incident_id == incident_id))
        for run in runs:
            for task in run.tasks:
                report = task.spec.get("report") or {}
                if (
                    task.status == "open"
                    and task.due_at is None
                    and report.get("anchor") == ("response_end")
                ):
                    task.due_at = _utc(at) + timedelta(seconds=int(report["deadline_seconds"]))
                    n += 1
        return n

    # -- actions ------------------------------------------------------------------------------

    def context(self, session: Session, incident: Incident) -> dict[str, str | list[str]]:
        """Values for `${...}` placeholders of action parameters.

        Scalars: `incident.*`, the incident's group fields, and `CONTEXT_FIELDS` from its
        latest alerts (newest first). A list: `${source.ips}` (`SOURCE_IPS`), the distinct
        `source.ip` of all its alerts that are on the Internet (see `attacking_ips`).
        """
        ctx: dict[str, str | list[str]] = {
            "incident.id": str(incident.id),
            "incident.title": incident.title,
            "incident.unit": incident.unit or "",
            "incident.group": incident.category or "",
            "incident.path": incident.response_path,
            "incident.severity": incident.severity,
        }
        for key, value in (incident.group_fields or {}).items():
            if value not in (None, "", []):
                ctx.setdefault(key, str(value))
        alerts = session.scalars(
            select(IncidentAlert)
            .where(IncidentAlert.incident_id == incident.id)
            .order_by(IncidentAlert.ts.desc())
            .limit(50)
        )
        for alert in alerts:
            for key in CONTEXT_FIELDS:
                value = (alert.fields or {}).get(key)
                if value not in (None, "", []):
                    ctx.setdefault(key, str(value))
        ctx[SOURCE_IPS] = attacking_ips(session, incident.id)
        return ctx

    @staticmethod
    def resolve(params: Mapping[str, Any], ctx: Mapping[str, str | list[str]]) -> dict[str, Any]:
        """`params` with every `${name}` replaced by its value in `ctx`.

        A list value (`${source.ips}`) must be a parameter's whole value: it resolves to the
        list (spliced into an enclosing list); inside a longer string it is an error.
        """

        def lookup(name: str) -> str | list[str]:
            value = ctx.get(name)
            if value is None or value == "" or value == []:
                raise ActionError(f"no value for ${{{name}}} in this incident")
            return value

        def text(value: str) -> str:
            def sub(m: re.Match[str]) -> str:
                found = lookup(m.group(1))
                if isinstance(found, list):
                    raise ActionError(
                        f"${{{m.group(1)}}} is a list of {len(found)} values: it must be "
                        f'the whole value of a parameter (e.g. ips: "${{{m.group(1)}}}"), '
                        f"not part of {value!r}"
                    )
                return found

            return _PLACEHOLDER.sub(sub, value)

        def one(value: Any) -> Any:
            if isinstance(value, str):
                whole = _PLACEHOLDER.fullmatch(value)
                if whole is not None and isinstance(ctx.get(whole.group(1)), list):
                    return list(lookup(whole.group(1)))
                return text(value)
            if isinstance(value, list):
                out: list[Any] = []
                for v in value:
                    r = one(v)
                    whole = _PLACEHOLDER.fullmatch(v) if isinstance(v, str) else None
                    if whole is not None and isinstance(r, list):
                        out.extend(r)  # a list placeholder inside a list: its items
                    else:
                        out.append(r)
                return out
            if isinstance(value, dict):
                return {k: one(v) for k, v in value.items()}
            return value

        return {k: one(v) for k, v in params.items()}

    def run_action(
        self,
        session: Session,
        task: PlaybookTask,
        *,
        actor: str,
        role: str,
        execute: bool = False,
        now: datetime | None = None,
    ) -> ActionResult:
        """Run the task's action (dry-run unless `execute`), record and audit the result."""
        if task.kind != "action":
            raise TaskStateError(f"task {task.task_id} is not an action")
        if execute and role not in EXECUTE_ROLES:
            raise TaskForbidden(f"executing an action needs the admin or analyst role, not {role}")
        spec = task.spec["action"]
        incident = session.get_one(Incident, task.run.incident_id)
        try:
            params = self.resolve(spec.get("params") or {}, self.context(session, incident))
            result = self.adapters.get(spec["adapter"]).run(params, dry_run=not execute)
        except ActionError as e:
            params = dict(spec.get("params") or {})
            result = ActionResult(spec["adapter"], not execute, False, str(e))
        at = (now or _now()).isoformat()
        history = list((task.result or {}).get("history", []))
        history.append({"at": at, "by": actor, **result.to_dict()})
        task.result = {**(task.result or {}), "history": history[-20:]}
        record_audit(
            session,
            actor,
            "playbook.action.execute" if execute else "playbook.action.dry_run",
            "playbook_task",
            task.id,
            run=task.run_id,
            task=task.task_id,
            adapter=spec["adapter"],
            params=params,
            ok=result.ok,
            message=result.message,
            requests=result.requests,
        )
        return result

    # -- reports ------------------------------------------------------------------------------

    def generate_report(
        self, session: Session, task: PlaybookTask, *, actor: str, now: datetime | None = None
    ) -> dict[str, str]:
        """The report document of a reporting-duty task in Vietnamese and English (stored)."""
        if task.kind != "report":
            raise TaskStateError(f"task {task.task_id} is not a reporting duty")
        docs = {lang: render(session, task, lang, now=now) for lang in LANGS}
        task.result = {
            **(task.result or {}),
            "report": docs,
            "generated_at": (now or _now()).isoformat(),
        }
        digest = {lang: hashlib.sha256(d.encode()).hexdigest() for lang, d in docs.items()}
        record_audit(
            session,
            actor,
            "playbook.report.generate",
            "playbook_task",
            task.id,
            run=task.run_id,
            duty=task.spec["report"]["duty"],
            sha256=digest,
        )
        return docs


_default: PlaybookEngine | None = None


def default_engine() -> PlaybookEngine:
    global _default
    if _default is None:
        _default = PlaybookEngine()
    return _default


def instantiate(incident: Incident, session: Session | None = None) -> PlaybookRun:
    """The run of `incident`'s playbook with the default library and regimes."""
    return default_engine().instantiate(incident, session)


def service_with_playbooks(settings: Settings, db: Database) -> tuple[Any, PlaybookEngine]:
    """The incident service of a running socmon (`incident_policy`) with its playbook engine
    attached (`playbook_adapters`, `playbook_regime`): what the stack ingests alerts with and
    what the API changes incidents through, so both start and replan runs alike."""
    from playbooks.adapters import AdapterRegistry
    from soc_api.incidents import IncidentPolicy, IncidentService

    policy = IncidentPolicy.from_dict(
        settings.incident_policy, window_seconds=settings.incident_window_seconds
    )
    service = IncidentService(policy=policy)
    engine = PlaybookEngine(
        adapters=AdapterRegistry.from_config(settings.playbook_adapters),
        regime=settings.playbook_regime or None,
    )
    attach(service, db, engine)
    return service, engine


#: The incident states that end the response: deadlines anchored at its end (the
#: end-of-response report) start when an incident first reaches one of them.
RESPONSE_ENDED_STATES = frozenset({"recovered", "closed"})


def attach(service: Any, db: Database, engine: PlaybookEngine | None = None) -> PlaybookEngine:
    """Register the engine on `IncidentService.on_opened`: every opened incident gets a run;
    and on `on_changed`: a new response path or group starts the playbook that now applies
    (`replan`), the response's end starts the deadlines anchored at it.

    The hook calls back after the incident's transaction committed, with a detached row; the
    run is created in a session of its own. A failure is logged by the service, never lost
    silently, and the incident stays.
    """
    eng = engine or default_engine()

    def _opened(incident: Incident) -> None:
        eng.on_incident_opened(db, incident.id)

    def _changed(session: Session, incident: Incident, changes: dict[str, Any]) -> None:
        if ("response_path" in changes or "group" in changes) and incident.category:
            eng.replan(session, incident)
        state = changes.get("state")
        if state is not None and state[1] in RESPONSE_ENDED_STATES:
            eng.response_ended(session, incident.id, datetime.now(UTC))

    service.on_opened(_opened)
    service.on_changed(_changed)
    return eng


# -- SLA timers -------------------------------------------------------------------------------

AlertSink = Callable[[dict[str, Any]], None]


def breach_alert(task: PlaybookTask, run: PlaybookRun, now: datetime) -> dict[str, Any]:
    """The alert document of a task past its due time (one per task: deterministic id)."""
    aid = hashlib.blake2b(
        f"{SLA_RULE_ID}\x00{run.id}\x00{task.task_id}".encode(), digest_size=20
    ).hexdigest()
    due = _utc(task.due_at) if task.due_at else now
    level = "high" if task.kind == "report" or run.path == "serious" else "medium"
    return make_alert(
        alert_id=aid,
        rule_id=SLA_RULE_ID,
        title=f"Playbook task overdue / Quá hạn nhiệm vụ: {task.title.get('en')} "
        f"(incident {run.incident_id})",
        level=level,
        tags=["socmon.playbook", f"socmon.playbook.{task.kind}"],
        group_by=["socmon.playbook.run_id"],
        timestamp=now.isoformat().replace("+00:00", "Z"),
        event_id=f"playbook-task-{task.id}",
        ruleset="socmon",
        fields={
            "socmon": {
                "unit": run.unit,
                "playbook": {
                    "run_id": run.id,
                    "incident_id": run.incident_id,
                    "playbook_id": run.playbook_id,
                    "task_id": task.task_id,
                    "task_kind": task.kind,
                    "owner_role": task.owner_role,
                    "title": dict(task.title),
                    "due_at": due.isoformat().replace("+00:00", "Z"),
                    "overdue_seconds": int((now - due).total_seconds()),
                },
            }
        },
    )


class SlaWatcher:
    """Raises one breach alert per open task past its due time.

    `check(now)` does the work (tests drive it with an explicit clock); `start()` runs it
    every `interval` seconds on an APScheduler background scheduler with `clock()` as now.
    The breach is stamped on the task before the alert is handed to `sink` in the same
    transaction: a failing sink rolls the stamp back and the next check retries.
    """

    def __init__(
        self,
        db: Database,
        sink: AlertSink,
        *,
        clock: Callable[[], datetime] = _now,
        interval: float = 60.0,
    ) -> None:
        self.db = db
        self.sink = sink
        self.clock = clock
        self.interval = interval
        self._scheduler: Any = None
        self._lock = threading.Lock()

    def check(self, now: datetime | None = None) -> list[dict[str, Any]]:
        now = _utc(now or self.clock())
        raised: list[dict[str, Any]] = []
        with self._lock, self.db.session() as session:
            overdue = session.scalars(
                select(PlaybookTask)
                .where(
                    PlaybookTask.status == "open",
                    PlaybookTask.breached_at.is_(None),
                    PlaybookTask.due_at.is_not(None),
                    PlaybookTask.due_at < now,
                )
                .order_by(PlaybookTask.due_at, PlaybookTask.id)
            ).all()
            for task in overdue:
                alert = breach_alert(task, task.run, now)
                task.breached_at = now
                record_audit(
                    session,
                    ACTOR,
                    "playbook.task.sla_breach",
                    "playbook_task",
                    task.id,
                    run=task.run_id,
                    task=task.task_id,
                    alert=alert["_id"],
                )
                self.sink(alert)
                raised.append(alert)
        if raised:
            log.warning("playbook tasks overdue %s", kv(count=len(raised)))
        return raised

    def _tick(self) -> None:
        try:
            self.check()
        except Exception:
            log.exception("playbook SLA check failed")

    def start(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        if self._scheduler is not None:
            return
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=self.interval, timezone=UTC),
            id="playbooks:sla",
            name="playbook SLA watcher",
            max_instances=1,
            coalesce=True,
        )
        scheduler.start()
        self._scheduler = scheduler

    def jobs(self) -> list[tuple[str, float]]:
        if self._scheduler is None:
            return []
        return [
            (job.id, job.trigger.interval.total_seconds()) for job in self._scheduler.get_jobs()
        ]

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None


def spool_sink(spool: Any) -> AlertSink:
    """A sink appending each alert to a `socmon.spool.Spool` (e.g. the alerts spool)."""
    import orjson

    def _sink(alert: dict[str, Any]) -> None:
        spool.append([alert], lambda a, _seq: orjson.dumps(a))

    return _sink
