"""Actions run from a playbook task (parameters from the incident, audited, dry-run by
default) and report documents of reporting duties in Vietnamese and English."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from playbooks.adapters import AdapterRegistry
from playbooks.engine import PlaybookEngine, TaskForbidden, TaskStateError
from playbooks.errors import ActionError
from playbooks.models import PlaybookRun, PlaybookTask
from soc_api import audit
from soc_api.incidents import IncidentService
from soc_api.models import AuditRecord, Incident, IncidentObservable
from socmon.db import Database
from tests.playbooks.conftest import attack_alert, open_incident
from tests.playbooks.servers import FortiOsHandler, FortiOsState, serve

OPENED = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TOKEN = "fgt-token-abc"
# Addresses on the Internet (`is_global`): documentation ranges such as 203.0.113.0/24 are
# not, so `${source.ips}` leaves them out like the province's own addresses.
ATTACKER = "45.95.147.7"
INTERNAL = ["10.20.30.40", "192.168.1.5", "127.0.0.1", "fe80::1", "100.64.0.9", "203.0.113.7"]


@pytest.fixture
def fortios() -> Iterator[tuple[str, FortiOsState]]:
    state = FortiOsState(TOKEN, ["socmon-blocklist"])
    with serve(FortiOsHandler, state) as url:
        yield url, state


def engine_for(url: str, **extra: object) -> PlaybookEngine:
    return PlaybookEngine(
        adapters=AdapterRegistry.from_config(
            {
                "perimeter-firewall": {
                    "type": "fortigate",
                    "base_url": url,
                    "api_key_env": "TEST_FGT_KEY",
                    "group": "socmon-blocklist",
                    **extra,
                }
            }
        )
    )


def attack_from(db: Database, sources: list[str]) -> int:
    """One real A4 incident from one alert per source, `sources[i]` at OPENED + i seconds
    (all in one grouping window); returns its id."""
    svc = IncidentService()
    ids = set()
    with db.session() as s:
        for n, src in enumerate(sources, start=1):
            ts = (OPENED + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
            inc = svc.ingest(s, f"pb-r-takeover-{n}", attack_alert(n, src=src, ts=ts))
            assert inc is not None
            ids.add(inc.id)
        assert len(ids) == 1
        incident = s.get_one(Incident, ids.pop())
        incident.created_at = OPENED
        return incident.id


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
    iid = attack_from(db, [ATTACKER])
    with db.session() as s:
        run_id = engine.instantiate(s.get_one(Incident, iid), s).id
    with db.session() as s:
        block = task_of(s, run_id, "a-block-source")
        dry = engine.run_action(s, block, actor="an", role="analyst")
        assert dry.dry_run and dry.ok and state.requests == []
        assert dry.requests[0]["json"]["subnet"] == f"{ATTACKER} 255.255.255.255"
        assert dry.requests[0]["json"]["comment"] == f"socmon incident {iid}"
        with pytest.raises(TaskForbidden):
            engine.run_action(s, block, actor="m", role="manager", execute=True)
        done = engine.run_action(s, block, actor="an", role="analyst", execute=True)
        assert done.ok and not done.dry_run
        assert state.groups["socmon-blocklist"] == [f"socmon-block-{ATTACKER}"]
        assert block.result is not None
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
        assert records[1].detail["params"]["ips"] == [ATTACKER] and records[1].detail["ok"]
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
        assert not result.ok and "${source.ips}" in result.message and state.requests == []


def test_reports_in_vietnamese_and_english_from_incident_and_regime_data(
    db: Database, fortios: tuple[str, FortiOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _state = fortios
    monkeypatch.setenv("TEST_FGT_KEY", TOKEN)
    engine = engine_for(url)
    iid = attack_from(db, [ATTACKER])
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
    assert (
        "Block the attacking source IPs on the perimeter firewall: blocked 1, already blocked 0,"
        f" refused 0, failed 0 of 1 addresses (socmon-blocklist); blocked 1: {ATTACKER}" in en
    )
    assert "Chặn các địa chỉ IP nguồn tấn công trên tường lửa biên: blocked 1" in vi
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


# -- `${source.ips}`: every attacking address of the incident ----------------------------------


def brute_force_sources(n: int = 30) -> list[str]:
    """`n` Internet attackers, each seen 3 times, with the province's own and unroutable
    addresses mixed in: 3 n + 6 alerts, so the first attackers are only in alerts older than
    the latest 50."""
    attackers = [f"45.95.{147 + i // 200}.{i % 200 + 1}" for i in range(n)]
    return attackers + INTERNAL + attackers[::-1] + attackers


def test_source_ips_lists_every_internet_source_of_all_alerts_in_first_seen_order(
    db: Database,
) -> None:
    sources = brute_force_sources()
    iid = attack_from(db, sources)
    with db.session() as s:
        incident = s.get_one(Incident, iid)
        ctx = PlaybookEngine().context(s, incident)
        observed = set(
            s.scalars(
                select(IncidentObservable.value).where(
                    IncidentObservable.incident_id == iid, IncidentObservable.type == "ip"
                )
            )
        )
    assert ctx["source.ips"] == sources[:30]
    assert set(INTERNAL) <= observed  # the incident saw them: only the placeholder drops them
    assert ctx["source.ip"] == sources[-1]  # the scalar stays the newest alert's
    params = {"ips": "${source.ips}", "comment": "incident ${incident.id}", "n": 3}
    assert PlaybookEngine.resolve(params, ctx) == {
        "ips": sources[:30],
        "comment": f"incident {iid}",
        "n": 3,
    }
    spliced = PlaybookEngine.resolve({"ips": ["198.51.100.1", "${source.ips}"]}, ctx)
    assert spliced["ips"] == ["198.51.100.1", *sources[:30]]
    with pytest.raises(ActionError, match=r"\$\{source.ips\} is a list of 30 values.*whole"):
        PlaybookEngine.resolve({"comment": "block ${source.ips} now"}, ctx)


def test_an_incident_with_only_internal_sources_blocks_nothing(
    db: Database, fortios: tuple[str, FortiOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fortios
    monkeypatch.setenv("TEST_FGT_KEY", TOKEN)
    engine = engine_for(url)
    iid = attack_from(db, INTERNAL)
    with db.session() as s:
        run = engine.instantiate(s.get_one(Incident, iid), s)
        block = task_of(s, run.id, "a-block-source")
        result = engine.run_action(s, block, actor="an", role="analyst", execute=True)
    assert not result.ok and "no value for ${source.ips}" in result.message
    assert state.requests == []


def test_brute_force_from_30_sources_blocks_all_30_in_one_action(
    db: Database, fortios: tuple[str, FortiOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fortios
    monkeypatch.setenv("TEST_FGT_KEY", TOKEN)
    sources = brute_force_sources()
    attackers = sources[:30]
    engine = engine_for(url, protected=[f"{attackers[4]}/32", "10.0.0.0/8"])
    iid = attack_from(db, sources)
    with db.session() as s:
        run_id = engine.instantiate(s.get_one(Incident, iid), s).id
    with db.session() as s:
        block = task_of(s, run_id, "a-block-source")
        dry = engine.run_action(s, block, actor="an", role="analyst")
        assert dry.dry_run and dry.ok and state.requests == []
        sent = [r for r in dry.requests if "method" in r]
        assert len(sent) == 2 * 29
        assert [r["address"] for r in sent[::2]] == [a for a in attackers if a != attackers[4]]
        assert [r["json"]["subnet"] for r in sent[::2]] == [
            f"{a} 255.255.255.255" for a in attackers if a != attackers[4]
        ]
        assert dry.requests[-1] == {
            "address": attackers[4],
            "outcome": "refused",
            "reason": f"{attackers[4]} is in the protected range {attackers[4]}/32: never blocked",
        }
        assert dry.message.startswith("would block 29 of 30 addresses (socmon-blocklist)")
        assert f"refused 1: {attackers[4]} (" in dry.message
        assert not {r["address"] for r in dry.requests} & set(INTERNAL)
        for internal in INTERNAL:  # nowhere in a request body nor in the message
            assert internal not in repr([r.get("json") for r in dry.requests] + [dry.message])

        done = engine.run_action(s, block, actor="an", role="analyst", execute=True)
        assert done.ok and not done.dry_run, done.message
        blocked = [a for a in attackers if a != attackers[4]]
        assert sorted(state.addresses) == sorted(f"socmon-block-{a}" for a in blocked)
        assert state.groups["socmon-blocklist"] == [f"socmon-block-{a}" for a in blocked]
        assert done.message.startswith(
            "blocked 29, already blocked 0, refused 1, failed 0 of 30 addresses"
        )
        assert [r.get("outcome") for r in done.requests] == ["done"] * 58 + ["refused"]
        assert len(state.requests) == 58
        for internal in INTERNAL:
            assert all(internal not in repr(r["json"]) for r in state.requests)
            assert internal not in done.message

        again = engine.run_action(s, block, actor="an", role="analyst", execute=True)
        assert again.ok and "blocked 0, already blocked 29, refused 1" in again.message
        assert len(state.groups["socmon-blocklist"]) == 29
    with db.session() as s:
        rec = s.scalars(
            select(AuditRecord)
            .where(AuditRecord.action == "playbook.action.execute")
            .order_by(AuditRecord.id)
        ).first()
        assert rec is not None and rec.detail["params"]["ips"] == attackers
        assert rec.detail["message"] == done.message and len(rec.detail["requests"]) == 59
        assert TOKEN not in repr(rec.detail)
        assert audit.verify(s)[0]


def test_more_attackers_than_the_cap_refuse_the_action(
    db: Database, fortios: tuple[str, FortiOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fortios
    monkeypatch.setenv("TEST_FGT_KEY", TOKEN)
    engine = engine_for(url, max_per_action=20)
    iid = attack_from(db, brute_force_sources())
    with db.session() as s:
        run = engine.instantiate(s.get_one(Incident, iid), s)
        block = task_of(s, run.id, "a-block-source")
        for execute in (False, True):
            result = engine.run_action(s, block, actor="an", role="analyst", execute=execute)
            assert not result.ok and result.requests == []
            assert "30 addresses to block, more than max_per_action (20)" in result.message
    assert state.requests == [] and state.addresses == {}
