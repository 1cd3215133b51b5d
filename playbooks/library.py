"""The playbook library: YAML files validated against `schema.json`, includes resolved.

Two kinds of file in `playbooks/library/`:
- `fragment`: shared tasks (a base per family A/B/C, the normal and serious paths, the
  reporting duties), included by playbooks;
- `playbook`: one incident group (A1–A9, B1–B5, C1–C5) with its `paths.normal` and
  `paths.serious`; each path resolves to one playbook `<id>-<path>` made of the group's
  includes and tasks, then the path's includes and tasks, ordered by phase.

A task whose id was already included is an error unless it says `override: true` (it then
replaces the included task in place). Every error names the file and the JSON path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from playbooks.errors import PlaybookError
from playbooks.regimes import Regimes, default_regimes
from socmon.errors import Location

LIBRARY_DIR = Path(__file__).parent / "library"
SCHEMA_FILE = Path(__file__).parent / "schema.json"
GROUPS = (
    tuple(f"A{i}" for i in range(1, 10))
    + tuple(f"B{i}" for i in range(1, 6))
    + tuple(f"C{i}" for i in range(1, 6))
)
PATHS = ("normal", "serious")
PHASES = ("triage", "escalation", "containment", "eradication", "recovery", "reporting", "closure")
ROLES = ("admin", "analyst", "provider-analyst", "sysadmin", "manager")
_UNITS = {"m": 60, "h": 3600, "d": 86400}


def sla_seconds(value: str) -> int:
    """`30m`, `4h`, `5d` in seconds."""
    return int(value[:-1]) * _UNITS[value[-1]]


@dataclass(frozen=True)
class TaskDef:
    id: str
    title: Mapping[str, str]
    phase: str
    owner: str
    kind: str
    sla: str | None
    description: Mapping[str, str] | None = None
    action: Mapping[str, Any] | None = None
    report: Mapping[str, Any] | None = None
    origin: str = ""  # the library file that defined it

    @property
    def sla_seconds(self) -> int | None:
        return sla_seconds(self.sla) if self.sla else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "title": dict(self.title),
            "phase": self.phase,
            "owner": self.owner,
            "kind": self.kind,
            "sla": self.sla,
            "origin": self.origin,
        }
        if self.description:
            out["description"] = dict(self.description)
        if self.action:
            out["action"] = {
                "adapter": self.action["adapter"],
                "params": dict(self.action.get("params") or {}),
            }
        if self.report:
            out["report"] = dict(self.report)
        return out


@dataclass(frozen=True)
class Playbook:
    """One resolved playbook: a group and a response path."""

    id: str
    group: str
    path: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    tasks: tuple[TaskDef, ...]
    file: str

    def to_dict(self, *, with_tasks: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "group": self.group,
            "path": self.path,
            "title": dict(self.title),
            "description": dict(self.description),
            "file": self.file,
            "task_count": len(self.tasks),
        }
        if with_tasks:
            out["tasks"] = [t.to_dict() for t in self.tasks]
        return out


@dataclass
class Issue:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


@dataclass
class Library:
    playbooks: dict[str, Playbook] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    def get(self, playbook_id: str) -> Playbook | None:
        return self.playbooks.get(playbook_id)

    def for_incident(self, group: str, path: str) -> Playbook | None:
        return self.playbooks.get(f"{group.lower()}-{path}")

    def missing(self) -> list[tuple[str, str]]:
        """(group, path) pairs without a playbook."""
        return [(g, p) for g in GROUPS for p in PATHS if self.for_incident(g, p) is None]


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def validate_document(doc: Any, file: str) -> list[Issue]:
    """Schema issues of one parsed file, each naming the file and the JSON path."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [Issue(file, _json_path(e.absolute_path), e.message) for e in errors]


def _task(raw: Mapping[str, Any], origin: str) -> TaskDef:
    return TaskDef(
        id=raw["id"],
        title=raw["title"],
        phase=raw["phase"],
        owner=raw["owner"],
        kind=raw["kind"],
        sla=raw.get("sla"),
        description=raw.get("description"),
        action=raw.get("action"),
        report=raw.get("report"),
        origin=origin,
    )


class _Resolver:
    def __init__(self, fragments: dict[str, tuple[str, Mapping[str, Any]]], issues: list[Issue]):
        self.fragments = fragments
        self.issues = issues

    def add(
        self,
        tasks: list[TaskDef],
        raw_tasks: list[Mapping[str, Any]],
        file: str,
        where: str,
    ) -> None:
        for i, raw in enumerate(raw_tasks):
            task = _task(raw, file)
            known = [n for n, t in enumerate(tasks) if t.id == task.id]
            if known and raw.get("override"):
                tasks[known[0]] = task
            elif known:
                self.issues.append(
                    Issue(file, f"{where}[{i}].id", f"task id {task.id!r} already included")
                )
            elif raw.get("override"):
                self.issues.append(
                    Issue(file, f"{where}[{i}].override", f"no included task {task.id!r}")
                )
            else:
                tasks.append(task)

    def include(
        self, tasks: list[TaskDef], names: list[str], file: str, where: str, seen: tuple[str, ...]
    ) -> None:
        for i, name in enumerate(names):
            if name in seen:
                self.issues.append(Issue(file, f"{where}[{i}]", f"include cycle via {name!r}"))
                continue
            frag = self.fragments.get(name)
            if frag is None:
                self.issues.append(Issue(file, f"{where}[{i}]", f"unknown fragment {name!r}"))
                continue
            ffile, fdoc = frag
            self.include(tasks, fdoc.get("include") or [], ffile, "$.include", (*seen, name))
            self.add(tasks, fdoc.get("tasks") or [], ffile, "$.tasks")


def _check_tasks(pb: Playbook, regimes: Regimes, issues: list[Issue]) -> None:
    duties = regimes.duty_ids()
    for t in pb.tasks:
        if t.kind == "report" and t.report and t.report["duty"] not in duties:
            issues.append(
                Issue(
                    t.origin,
                    f"task {t.id}.report.duty",
                    f"unknown reporting duty {t.report['duty']!r} (known: {sorted(duties)})",
                )
            )


def load_library(
    directory: Path = LIBRARY_DIR, *, regimes: Regimes | None = None, collect_errors: bool = False
) -> Library:
    """Load, validate and resolve every `*.yml` of `directory`.

    With `collect_errors=False` the first problem raises `PlaybookError` naming its file and
    path (all problems are listed in the message); otherwise they are in `Library.issues`.
    """
    regimes = regimes or default_regimes()
    issues: list[Issue] = []
    docs: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(directory.glob("*.yml")):
        name = path.name
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            issues.append(Issue(name, "$", f"cannot read YAML: {e}"))
            continue
        found = validate_document(doc, name)
        if found:
            issues.extend(found)
            continue
        docs.append((name, doc))

    fragments: dict[str, tuple[str, Mapping[str, Any]]] = {}
    playbook_docs: list[tuple[str, dict[str, Any]]] = []
    ids: dict[str, str] = {}
    for name, doc in docs:
        if doc["id"] in ids:
            issues.append(Issue(name, "$.id", f"id {doc['id']!r} also used by {ids[doc['id']]}"))
            continue
        ids[doc["id"]] = name
        if doc["kind"] == "fragment":
            fragments[doc["id"]] = (name, doc)
        else:
            playbook_docs.append((name, doc))

    library = Library(issues=issues)
    resolver = _Resolver(fragments, issues)
    groups: dict[str, str] = {}
    for name, doc in playbook_docs:
        group = doc["group"]
        if group in groups:
            issues.append(Issue(name, "$.group", f"group {group} also covered by {groups[group]}"))
            continue
        groups[group] = name
        for path_name in PATHS:
            spec = doc["paths"][path_name]
            tasks: list[TaskDef] = []
            resolver.include(tasks, doc.get("include") or [], name, "$.include", ())
            resolver.add(tasks, doc.get("tasks") or [], name, "$.tasks")
            where = f"$.paths.{path_name}"
            resolver.include(tasks, spec.get("include") or [], name, f"{where}.include", ())
            resolver.add(tasks, spec.get("tasks") or [], name, f"{where}.tasks")
            ordered = sorted(enumerate(tasks), key=lambda it: (PHASES.index(it[1].phase), it[0]))
            desc = dict(doc["description"])
            if spec.get("description"):
                desc = {k: f"{v} {spec['description'][k]}" for k, v in desc.items()}
            pb = Playbook(
                id=f"{doc['id']}-{path_name}",
                group=group,
                path=path_name,
                title=doc["title"],
                description=desc,
                tasks=tuple(t for _, t in ordered),
                file=name,
            )
            if not pb.tasks:
                issues.append(Issue(name, where, "the path resolves to no task"))
            if pb.id != f"{group.lower()}-{path_name}":
                issues.append(Issue(name, "$.id", f"playbook id must be {group.lower()!r}"))
            _check_tasks(pb, regimes, issues)
            library.playbooks[pb.id] = pb
    if issues and not collect_errors:
        first = issues[0]
        raise PlaybookError(
            f"{first.path}: {first.message}"
            + (f" (and {len(issues) - 1} more: " + "; ".join(map(str, issues[1:6])) + ")")
            * (len(issues) > 1),
            Location(directory / first.file),
        )
    return library


@lru_cache(maxsize=1)
def default_library() -> Library:
    return load_library()
