"""Playbooks: the library, and runs with their tasks, scoped by the incident's unit.

Reading is open to every role within its scope (sysadmins and managers own tasks too). A
task is closed (done / skipped) by its owner role or an admin; an action runs in dry-run
unless `execute: true` by an admin or analyst; the drill team only reads. Every change goes
through `playbooks.engine` and is audited there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Select, func, select

from playbooks.engine import (
    EXECUTE_ROLES,
    PlaybookEngine,
    TaskForbidden,
    TaskStateError,
    default_engine,
)
from playbooks.errors import PlaybookError
from playbooks.models import PlaybookRun, PlaybookTask
from soc_api.access_policy import SOC_WORK
from soc_api.deps import AgencyScope, CurrentUser, Scope, SessionDep, WriteRoute, require_roles
from soc_api.errors import ApiProblem, ErrorResponse
from soc_api.incidents import parse_time as as_utc
from soc_api.labels import INCIDENT_CATEGORY, RESPONSE_PATH, label
from soc_api.models import Incident

_errors: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
}
# The owner roles of library tasks: who may act on a task at all (then: its owner or admin).
TASK_ROLES = ("admin", "analyst", "provider-analyst", "sysadmin", "manager")
MAX_ID = 2**31 - 1  # SQL INTEGER: larger ids cannot exist (and must not reach PostgreSQL)
RunId = Annotated[int, Path(ge=1, le=MAX_ID)]
TaskId = Annotated[str, Path(max_length=64)]
router = APIRouter(
    route_class=WriteRoute, prefix="/playbooks", tags=["playbooks"], responses=_errors
)
runs_router = APIRouter(
    route_class=WriteRoute, prefix="/playbook-runs", tags=["playbooks"], responses=_errors
)


class Text(BaseModel):
    vi: str
    en: str


class PlaybookTaskDef(BaseModel):
    id: str
    title: Text
    description: Text | None = None
    phase: str
    owner: str
    kind: Literal["manual", "action", "report"]
    sla: str | None
    action: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    origin: str


class PlaybookPublic(BaseModel):
    id: str
    group: str
    group_label: Text | None
    path: str
    path_label: Text | None
    title: Text
    description: Text
    file: str
    task_count: int


class PlaybookDetail(PlaybookPublic):
    tasks: list[PlaybookTaskDef]


class PlaybooksPublic(BaseModel):
    data: list[PlaybookPublic]
    count: int


class TaskPublic(BaseModel):
    id: int
    task_id: str
    position: int
    phase: str
    kind: str
    title: Text
    owner_role: str
    sla_seconds: int | None
    due_at: datetime | None
    status: Literal["open", "done", "skipped"]
    done_by: str | None
    done_at: datetime | None
    comment: str | None
    breached_at: datetime | None
    spec: dict[str, Any]
    result: dict[str, Any] | None


class RunPublic(BaseModel):
    id: int
    incident_id: int
    playbook_id: str
    group: str
    group_label: Text | None
    path: str
    path_label: Text | None
    regime: str
    unit: str | None
    status: str
    opened_at: datetime
    created_at: datetime
    closed_at: datetime | None
    open_tasks: int


class RunDetail(RunPublic):
    tasks: list[TaskPublic]


class RunsPublic(BaseModel):
    data: list[RunPublic]
    count: int


class RunCreate(BaseModel):
    incident_id: int = Field(ge=1, le=2**31 - 1)


class TaskUpdate(BaseModel):
    status: Literal["done", "skipped"]
    comment: str | None = Field(default=None, max_length=5000)


class ActionExecute(BaseModel):
    execute: bool = Field(default=False, description="false (default) = dry-run")


class ActionResultPublic(BaseModel):
    adapter: str
    dry_run: bool
    ok: bool
    message: str
    requests: list[dict[str, Any]]
    responses: list[dict[str, Any]]


class ReportPublic(BaseModel):
    vi: str
    en: str


def get_engine(request: Request) -> PlaybookEngine:
    engine = getattr(request.app.state, "playbook_engine", None)
    return engine if isinstance(engine, PlaybookEngine) else default_engine()


def _opt(dt: datetime | None) -> datetime | None:
    return as_utc(dt) if dt is not None else None


def _playbook(pb: Any, *, with_tasks: bool) -> dict[str, Any]:
    out: dict[str, Any] = pb.to_dict(with_tasks=with_tasks)
    out["group_label"] = label(INCIDENT_CATEGORY, pb.group)
    out["path_label"] = label(RESPONSE_PATH, pb.path)
    return out


def _task(t: PlaybookTask) -> dict[str, Any]:
    return {
        "id": t.id,
        "task_id": t.task_id,
        "position": t.position,
        "phase": t.phase,
        "kind": t.kind,
        "title": t.title,
        "owner_role": t.owner_role,
        "sla_seconds": t.sla_seconds,
        "due_at": _opt(t.due_at),
        "status": t.status,
        "done_by": t.done_by,
        "done_at": _opt(t.done_at),
        "comment": t.comment,
        "breached_at": _opt(t.breached_at),
        "spec": t.spec,
        "result": t.result,
    }


def _run(run: PlaybookRun, *, with_tasks: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": run.id,
        "incident_id": run.incident_id,
        "playbook_id": run.playbook_id,
        "group": run.group,
        "group_label": label(INCIDENT_CATEGORY, run.group),
        "path": run.path,
        "path_label": label(RESPONSE_PATH, run.path),
        "regime": run.regime,
        "unit": run.unit,
        "status": run.status,
        "opened_at": as_utc(run.opened_at),
        "created_at": as_utc(run.created_at),
        "closed_at": _opt(run.closed_at),
        "open_tasks": sum(1 for t in run.tasks if t.status == "open"),
    }
    if with_tasks:
        out["tasks"] = [_task(t) for t in run.tasks]
    return out


def _scoped(scope: Scope) -> Select[PlaybookRun]:
    """Runs whose incident the caller may see (unit, state-secret): filtering by `scope`."""
    return (
        select(PlaybookRun)
        .join(Incident, Incident.id == PlaybookRun.incident_id)
        .where(scope.filter(Incident.unit))
    )


def _problem(e: PlaybookError) -> ApiProblem:
    if isinstance(e, TaskForbidden):
        return ApiProblem(403, "forbidden", e.msg)
    if isinstance(e, TaskStateError):
        return ApiProblem(409, "conflict", e.msg)
    return ApiProblem(422, "invalid_request", e.msg)


# -- library ---------------------------------------------------------------------------------


@router.get("", response_model=PlaybooksPublic, summary="The playbook library")
def list_playbooks(
    request: Request,
    _user: CurrentUser,
    group: Annotated[str | None, Query(pattern=r"^[ABCabc][1-9]$")] = None,
    path: Annotated[Literal["normal", "serious"] | None, Query()] = None,
) -> dict[str, Any]:
    lib = get_engine(request).library
    items = [
        pb
        for pb in sorted(lib.playbooks.values(), key=lambda p: (p.group, p.path))
        if (group is None or pb.group == group.upper()) and (path is None or pb.path == path)
    ]
    return {"data": [_playbook(pb, with_tasks=False) for pb in items], "count": len(items)}


@router.get("/{playbook_id}", response_model=PlaybookDetail, summary="One playbook with tasks")
def get_playbook(playbook_id: str, request: Request, _user: CurrentUser) -> dict[str, Any]:
    pb = get_engine(request).library.get(playbook_id)
    if pb is None:
        raise ApiProblem(404, "not_found", f"playbook {playbook_id!r} not found")
    return _playbook(pb, with_tasks=True)


# -- runs ------------------------------------------------------------------------------------


@runs_router.get("", response_model=RunsPublic, summary="Playbook runs (newest first)")
def list_runs(
    session: SessionDep,
    _user: CurrentUser,
    scope: AgencyScope,
    incident_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Annotated[Literal["open", "done"] | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    query = _scoped(scope)
    if incident_id is not None:
        query = query.where(PlaybookRun.incident_id == incident_id)
    if status is not None:
        query = query.where(PlaybookRun.status == status)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(PlaybookRun.id.desc()).offset(offset).limit(limit))
    return {"data": [_run(r, with_tasks=False) for r in rows], "count": count}


@runs_router.post(
    "",
    response_model=RunDetail,
    status_code=201,
    summary="Start the playbook of an incident (admin, analyst, provider analyst; idempotent)",
    responses={403: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
    dependencies=[Depends(require_roles(*SOC_WORK))],
)
def create_run(
    body: RunCreate,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    scope: AgencyScope,
) -> dict[str, Any]:
    inc = session.scalars(
        select(Incident).where(Incident.id == body.incident_id, scope.filter(Incident.unit))
    ).first()
    if inc is None:
        raise ApiProblem(404, "not_found", f"incident {body.incident_id} not found")
    try:
        run = get_engine(request).instantiate(inc, session, actor=user.name)
    except PlaybookError as e:
        raise _problem(e) from e
    return _run(run, with_tasks=True)


def _load_run(session: SessionDep, scope: Scope, run_id: int) -> PlaybookRun:
    run = session.scalars(_scoped(scope).where(PlaybookRun.id == run_id)).first()
    if run is None:
        raise ApiProblem(404, "not_found", f"playbook run {run_id} not found")
    return run


def _load_task(run: PlaybookRun, task_id: str) -> PlaybookTask:
    task = next((t for t in run.tasks if t.task_id == task_id), None)
    if task is None:
        raise ApiProblem(404, "not_found", f"task {task_id!r} not in run {run.id}")
    return task


@runs_router.get("/{run_id}", response_model=RunDetail, summary="One run with its tasks")
def get_run(
    run_id: RunId, session: SessionDep, _user: CurrentUser, scope: AgencyScope
) -> dict[str, Any]:
    return _run(_load_run(session, scope, run_id), with_tasks=True)


@runs_router.patch(
    "/{run_id}/tasks/{task_id}",
    response_model=TaskPublic,
    summary="Close a task: done or skipped (owner role or admin)",
    responses={403: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
    dependencies=[Depends(require_roles(*TASK_ROLES))],
)
def update_task(
    run_id: RunId,
    task_id: TaskId,
    body: TaskUpdate,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    scope: AgencyScope,
) -> dict[str, Any]:
    task = _load_task(_load_run(session, scope, run_id), task_id)
    try:
        get_engine(request).transition(
            session, task, body.status, actor=user.name, role=user.role, comment=body.comment
        )
    except PlaybookError as e:
        raise _problem(e) from e
    return _task(task)


@runs_router.post(
    "/{run_id}/tasks/{task_id}/execute",
    response_model=ActionResultPublic,
    summary="Run a task's action: dry-run unless execute is true (admin or analyst)",
    responses={403: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
    dependencies=[Depends(require_roles(*TASK_ROLES))],
)
def execute_action(
    run_id: RunId,
    task_id: TaskId,
    body: ActionExecute,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    scope: AgencyScope,
) -> dict[str, Any]:
    task = _load_task(_load_run(session, scope, run_id), task_id)
    if body.execute and user.role not in EXECUTE_ROLES:
        raise ApiProblem(403, "forbidden", "executing an action needs the admin or analyst role")
    try:
        result = get_engine(request).run_action(
            session, task, actor=user.name, role=user.role, execute=body.execute
        )
    except PlaybookError as e:
        raise _problem(e) from e
    return result.to_dict()


@runs_router.post(
    "/{run_id}/tasks/{task_id}/report",
    response_model=ReportPublic,
    summary="Generate the report document of a reporting-duty task (Vietnamese and English)",
    responses={403: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
    dependencies=[Depends(require_roles(*TASK_ROLES))],
)
def generate_report(
    run_id: RunId,
    task_id: TaskId,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    scope: AgencyScope,
) -> dict[str, Any]:
    task = _load_task(_load_run(session, scope, run_id), task_id)
    if user.role not in {task.owner_role, *EXECUTE_ROLES}:
        raise ApiProblem(403, "forbidden", f"this report belongs to the {task.owner_role} role")
    try:
        return get_engine(request).generate_report(session, task, actor=user.name)
    except PlaybookError as e:
        raise _problem(e) from e
