"""Actions run from a playbook task (parameters from the incident, audited, dry-run by
default) and report documents of reporting duties in Vietnamese and English."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from playbooks.adapters import AdapterRegistry
from playbooks.engine import PlaybookEngine, TaskForbidden, TaskStateError
from playbooks.models import PlaybookRun, PlaybookTask
from soc_api import audit
from soc_api.models import AuditRecord, Incident
from socmon.db import Database
from tests.playbooks.conftest import open_incident
from tests.playbooks.servers import FortiOsHandler, FortiOsState, serve

OPENED = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TOKEN = "fgt-token-abc"


@pytest.fixture
def fortios() -> Iterator[tuple[str, FortiOsState]]:
    state = FortiOsState(TOKEN, ["socmon-blocklist"])
    with serve(FortiOsHandler, state) as url:
        yield url, state


def engine_for(url: str) -> PlaybookEngine:
    return PlaybookEngine(
        adapters=AdapterRegistry.from_config(
            {
                "perimeter-firewall": {
                    "type": "fortigate",
                    "base_url": url,
                    "api_key_env": "TEST_FGT_KEY",
                    "group": "socmon-blocklist",
                }
            }
        )
    )


def task_of(s: object, run_id: int, task_id: str) -> PlaybookTask:
    from sqlalchemy.orm import Session

    assert isinstance(s, Session)
    return s.scalars(
        select(PlaybookTask).where(PlaybookTask.run_id == run_id, PlaybookTask.task_id == task_id)
    ).one()


def test_block_action_uses_the_incident_source_ip_and_is_audited(
    db: Database, fortios: tuple[str, FortiOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fortios
    monkeypatch.setenv("TEST_FGT_KEY", TOKEN)
    engine = engine_for(url)
    iid = open_incident(db, created_at=OPENED)
    with db.session() as s:
        run_id = engine.instantiate(s.get_one(Incident, iid), s).id
    with db.session() as s:
        block = task_of(s, run_id, "a-block-source")
        dry = engine.run_action(s, block, actor="an", role="analyst")
        assert dry.dry_run and dry.ok and state.requests == []
        assert dry.requests[0]["json"]["subnet"] == "203.0.113.7 255.255.255.255"
        assert dry.requests[0]["json"]["comment"] == f"socmon incident {iid}"
        with pytest.raises(TaskForbidden):
            engine.run_action(s, block, actor="m", role="manager", execute=True)
        done = engine.run_action(s, block, actor="an", role="analyst", execute=True)
        assert done.ok and not done.dry_run
        assert state.groups["socmon-blocklist"] == ["socmon-block-203.0.113.7"]
        assert [h["dry_run"] for h in block.result["history"]] == [True, False]
        triage = task_of(s, run_id, "a-triage")
        with pytest.raises(TaskStateError, match="not an action"):
            engine.run_action(s, triage, actor="an", role="analyst")
        mail = task_of(s, run_id, "notify-response-team")  # adapter not configured here
        missing = engine.run_action(s, mail, actor="an", role="analyst")
        assert not missing.ok and "not configured" in missing.message
    with db.session() as s:
        records = s.scalars(
            select(AuditRecord)
            .where(AuditRecord.action.like("playbook.action.%"))
            .order_by(AuditRecord.id)
        ).all()
        assert [r.action for r in records] == [
            "playbook.action.dry_run",
            "playbook.action.execute",
            "playbook.action.dry_run",
        ]
        assert records[1].detail["params"]["ip"] == "203.0.113.7" and records[1].detail["ok"]
        assert records[1].detail["requests"][0]["headers"]["Authorization"] == "***"
        assert TOKEN not in repr([r.detail for r in records])
        assert records[2].detail["ok"] is False
        assert audit.verify(s)[0]


def test_a_missing_parameter_value_fails_the_action_without_sending(
    db: Database, fortios: tuple[str, FortiOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fortios
    monkeypatch.setenv("TEST_FGT_KEY", TOKEN)
    engine = engine_for(url)
    iid = open_incident(db, created_at=OPENED)
    with db.session() as s:
        run = engine.instantiate(s.get_one(Incident, iid), s)
        s.get_one(Incident, iid).group_fields = {}
        from soc_api.models import IncidentAlert

        for a in s.scalars(select(IncidentAlert).where(IncidentAlert.incident_id == iid)):
            a.fields = {k: v for k, v in a.fields.items() if k != "source.ip"}
        result = engine.run_action(
            s, task_of(s, run.id, "a-block-source"), actor="an", role="admin", execute=True
        )
        assert not result.ok and "${source.ip}" in result.message and state.requests == []


def test_reports_in_vietnamese_and_english_from_incident_and_regime_data(
    db: Database, fortios: tuple[str, FortiOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _state = fortios
    monkeypatch.setenv("TEST_FGT_KEY", TOKEN)
    engine = engine_for(url)
    iid = open_incident(db, created_at=OPENED)
    with db.session() as s:
        run_id = engine.instantiate(s.get_one(Incident, iid), s).id
    with db.session() as s:
        engine.transition(
            s,
            task_of(s, run_id, "a-triage"),
            "done",
            actor="an",
            role="analyst",
            now=OPENED + timedelta(minutes=12),
        )
        engine.run_action(
            s,
            task_of(s, run_id, "a-block-source"),
            actor="an",
            role="analyst",
            execute=True,
            now=OPENED + timedelta(minutes=15),
        )
        report_task = task_of(s, run_id, "report-72h")
        docs = engine.generate_report(s, report_task, actor="lead", now=OPENED + timedelta(hours=3))
        assert report_task.result is not None and report_task.result["report"] == docs
    vi, en = docs["vi"], docs["en"]
    assert vi.startswith("# Báo cáo sự cố 72 giờ — Báo cáo sự cố (nguyên nhân")
    assert en.startswith("# 72 h incident report — Incident report (cause, scope, remedy)")
    # recipients and deadline from the regime data
    assert "Đơn vị chuyên trách an ninh mạng, Bộ Công an" in vi
    assert "MPS specialised cybersecurity unit" in en
    assert "2026-11-26 10:00 UTC" in vi and "2026-11-26 10:00 UTC" in en  # opened + 72 h
    # incident data: group, path, systems, timeline, actions
    assert "A4 – Truy cập trái phép, chiếm quyền điều khiển" in vi
    assert "A4 – Unauthorised access / takeover" in en
    assert "| Phương án ứng phó | Nghiêm trọng |" in vi and "| Response path | Serious |" in en
    assert "`host.name`: portal-web-01" in en and "`destination.ip`: 10.10.10.10" in vi
    assert "2026-11-23 10:12 UTC — Verify the alerts and confirm the incident — done by an" in en
    assert "Xác minh cảnh báo, xác nhận sự cố — hoàn thành bởi an" in vi
    assert "Block the attacking source IP on the perimeter firewall: blocked 203.0.113.7" in en
    assert "First alert: r-takeover" in en and "Cảnh báo đầu tiên: r-takeover" in vi
    assert "so-tttt" in vi and "${" not in vi and "${" not in en
    with db.session() as s:
        rec = s.scalars(
            select(AuditRecord).where(AuditRecord.action == "playbook.report.generate")
        ).one()
        assert rec.actor == "lead" and rec.detail["duty"] == "incident_report_72h"
        assert s.get_one(PlaybookRun, run_id).regime == "nd331"


def test_end_report_before_the_response_ends_says_so(db: Database) -> None:
    engine = PlaybookEngine()
    iid = open_incident(db, created_at=OPENED, group="c2", level="low", rule="r-cfg")
    with db.session() as s:
        run = engine.instantiate(s.get_one(Incident, iid), s)
        end = task_of(s, run.id, "report-end")
        docs = engine.generate_report(s, end, actor="lead")
        assert "Biểu mẫu số 04" in docs["vi"] and "Form 04" in docs["en"]
        assert "not yet known (after the response ends)" in docs["en"]
        assert "VNCERT/CC (national coordinator)" in docs["en"]
        assert "C2 – Software change/configuration error" in docs["en"]
        with pytest.raises(TaskStateError):
            engine.generate_report(s, task_of(s, run.id, "c-triage"), actor="lead")
