"""Report documents of reporting-duty tasks: Markdown in Vietnamese and English.

The template (`report_templates.yml`) is filled with the incident's data — group, affected
systems, timeline, actions — and the duty chosen by the regime: form, recipients, deadline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from playbooks.models import PlaybookRun, PlaybookTask
from soc_api.labels import INCIDENT_CATEGORY, INCIDENT_STATUS, RESPONSE_PATH, SEVERITY
from soc_api.models import Incident, IncidentAlert, IncidentEvent

TEMPLATES_FILE = Path(__file__).parent / "report_templates.yml"
LANGS = ("vi", "en")
SYSTEM_FIELDS = ("host.name", "destination.ip", "observer.name")
_WORDS = {
    "vi": {
        "none": "(không có)",
        "opened": "tính từ khi phát hiện sự cố",
        "response_end": "tính từ khi kết thúc ứng phó",
        "after_end": "chưa xác định (chờ kết thúc ứng phó)",
        "alerts": "cảnh báo",
        "first_alert": "Cảnh báo đầu tiên",
        "last_alert": "Cảnh báo gần nhất",
        "opened_run": "Mở kịch bản",
        "dry": "chạy thử",
        "done": "hoàn thành",
        "skipped": "bỏ qua",
        "due": "hạn",
        "by": "bởi",
    },
    "en": {
        "none": "(none)",
        "opened": "from incident detection",
        "response_end": "from the end of the response",
        "after_end": "not yet known (after the response ends)",
        "alerts": "alerts",
        "first_alert": "First alert",
        "last_alert": "Latest alert",
        "opened_run": "Playbook opened",
        "dry": "dry-run",
        "done": "done",
        "skipped": "skipped",
        "due": "due",
        "by": "by",
    },
}


@lru_cache(maxsize=1)
def templates() -> dict[str, str]:
    data = yaml.safe_load(TEMPLATES_FILE.read_text(encoding="utf-8"))
    return {lang: str(data[lang]) for lang in LANGS}


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _fmt(dt: datetime | None) -> str:
    value = _utc(dt)
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _bullets(lines: list[str], lang: str) -> str:
    return "\n".join(f"- {line}" for line in lines) if lines else _WORDS[lang]["none"]


def _systems(incident: Incident, alerts: list[IncidentAlert], lang: str) -> str:
    seen: dict[str, set[str]] = {f: set() for f in SYSTEM_FIELDS}
    for key, value in (incident.group_fields or {}).items():
        if key in seen and value:
            seen[key].add(str(value))
    for alert in alerts:
        for key in SYSTEM_FIELDS:
            value = (alert.fields or {}).get(key)
            if value:
                seen[key].add(str(value))
    lines = [f"`{key}`: {', '.join(sorted(values))}" for key, values in seen.items() if values]
    return _bullets(lines, lang)


def _timeline(
    session: Session, incident: Incident, run: PlaybookRun, alerts: list[IncidentAlert], lang: str
) -> str:
    w = _WORDS[lang]
    entries: list[tuple[datetime, str]] = []
    if alerts:
        entries.append(
            (_utc(alerts[0].ts) or alerts[0].ts, f"{w['first_alert']}: {alerts[0].rule_id}")
        )
        if len(alerts) > 1:
            last = alerts[-1]
            entries.append(
                (
                    _utc(last.ts) or last.ts,
                    f"{w['last_alert']}: {last.rule_id} ({len(alerts)} {w['alerts']})",
                )
            )
    for ev in session.scalars(
        select(IncidentEvent).where(IncidentEvent.incident_id == incident.id).limit(200)
    ):
        entries.append((_utc(ev.ts) or ev.ts, f"{ev.kind} ({ev.actor})"))
    entries.append((_utc(run.created_at) or run.created_at, f"{w['opened_run']} {run.playbook_id}"))
    for task in run.tasks:
        if task.status != "open" and task.done_at is not None:
            entries.append(
                (
                    _utc(task.done_at) or task.done_at,
                    f"{task.title[lang]} — {w[task.status]} {w['by']} {task.done_by}",
                )
            )
    entries.sort(key=lambda e: e[0])
    return _bullets([f"{_fmt(ts)} — {text}" for ts, text in entries], lang)


def _actions(run: PlaybookRun, lang: str) -> str:
    w = _WORDS[lang]
    lines = []
    for task in run.tasks:
        if task.kind != "action" or not task.result:
            continue
        for res in task.result.get("history", []):
            flag = f" ({w['dry']})" if res.get("dry_run") else ""
            lines.append(f"{res.get('at', '-')} — {task.title[lang]}: {res.get('message')}{flag}")
    return _bullets(lines, lang)


def render(session: Session, task: PlaybookTask, lang: str, *, now: datetime | None = None) -> str:
    """The report of reporting-duty `task` in `lang` (vi or en)."""
    if lang not in LANGS:
        raise ValueError(f"language must be one of {LANGS}")
    w = _WORDS[lang]
    run = task.run
    incident = session.get_one(Incident, run.incident_id)
    duty = task.spec["report"]
    alerts = list(
        session.scalars(
            select(IncidentAlert)
            .where(IncidentAlert.incident_id == incident.id)
            .order_by(IncidentAlert.ts)
            .limit(1000)
        )
    )
    open_tasks = [
        f"{t.title[lang]} ({t.owner_role}; {w['due']} {_fmt(t.due_at)})"
        for t in run.tasks
        if t.status == "open" and t.id != task.id
    ]

    def lab(table: dict[str, dict[str, str]], code: str | None) -> str:
        return table.get(code or "", {}).get(lang, code or "-")

    values: dict[str, Any] = {
        "form": duty["form"][lang],
        "duty_title": duty["title"][lang],
        "regime_title": duty.get("regime_title", {}).get(lang, duty["regime"]),
        "recipients": "; ".join(r[lang] for r in duty["recipients"]),
        "deadline": _fmt(task.due_at) if task.due_at else w["after_end"],
        "anchor": w[duty["anchor"]],
        "generated_at": _fmt(now or datetime.now(UTC)),
        "incident_id": incident.id,
        "incident_title": incident.title,
        "group": run.group,
        "group_label": lab(INCIDENT_CATEGORY, run.group),
        "path_label": lab(RESPONSE_PATH, run.path),
        "severity_label": lab(SEVERITY, incident.severity),
        "unit": incident.unit or "-",
        "detected_at": _fmt(run.opened_at),
        "status_label": lab(INCIDENT_STATUS, incident.status),
        "systems": _systems(incident, alerts, lang),
        "timeline": _timeline(session, incident, run, alerts, lang),
        "actions": _actions(run, lang),
        "open_tasks": _bullets(open_tasks, lang),
        "playbook_id": run.playbook_id,
    }
    return Template(templates()[lang]).substitute(values)
