"""/api/playbooks and /api/playbook-runs over a real database, real adapters against a local
FortiOS server, scoping by the incident's unit and the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from playbooks.adapters import AdapterRegistry
from playbooks.engine import PlaybookEngine
from soc_api import audit, create_app, create_user, issue_token
from soc_api.models import AuditRecord, Incident
from socmon.db import Database
from tests.playbooks.conftest import open_incident
from tests.playbooks.servers import FortiOsHandler, FortiOsState, serve

OPENED = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TOKEN = "fgt-api-token"


def build_app(db: Database, engine: PlaybookEngine) -> FastAPI:
    app = create_app(db, None)
    app.state.playbook_engine = engine
    return app


@pytest.fixture
def fortios() -> Iterator[tuple[str, FortiOsState]]:
    state = FortiOsState(TOKEN, ["socmon-blocklist"])
    with serve(FortiOsHandler, state) as url:
        yield url, state


@pytest.fixture
def client(
    db: Database, fortios: tuple[str, FortiOsState], monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("TEST_FGT_KEY", TOKEN)
    engine = PlaybookEngine(
        adapters=AdapterRegistry.from_config(
            {
                "perimeter-firewall": {
                    "type": "fortigate",
                    "base_url": fortios[0],
                    "api_key_env": "TEST_FGT_KEY",
                    "group": "socmon-blocklist",
                }
            }
        )
    )
    with TestClient(build_app(db, engine)) as c:
        yield c


def auth(db: Database, name: str, role: str, units: list[str]) -> dict[str, str]:
    with db.session() as s:
        token = issue_token(s, create_user(s, name, role, units, actor="test"), actor="test")
    return {"Authorization": f"Bearer {token}"}


def seed_runs(db: Database) -> dict[str, int]:
    """Runs for incidents of two units and one on a state-secret system."""
    ids = {
        "tttt": open_incident(db, unit="so-tttt", created_at=OPENED, rule="r1"),
        "yte": open_incident(
            db, unit="so-yte", group="b3", level="low", created_at=OPENED, rule="r2"
        ),
        "secret": open_incident(
            db, unit="so-yte", group="a8", level="high", created_at=OPENED, rule="r3"
        ),
    }
    engine = PlaybookEngine()
    runs = {}
    with db.session() as s:
        s.get_one(Incident, ids["secret"]).state_secret = True
        for key, iid in ids.items():
            runs[key] = engine.instantiate(s.get_one(Incident, iid), s).id
    return runs


def test_library_routes(client: TestClient, db: Database) -> None:
    assert client.get("/api/playbooks").status_code == 401
    h = auth(db, "mgr", "manager", ["so-tttt"])
    body = client.get("/api/playbooks", headers=h).json()
    assert body["count"] == 38
    assert {(p["group"], p["path"]) for p in body["data"]} >= {("A1", "normal"), ("C5", "serious")}
    a4 = client.get("/api/playbooks", params={"group": "a4"}, headers=h).json()
    assert [p["id"] for p in a4["data"]] == ["a4-normal", "a4-serious"]
    assert a4["data"][1]["path_label"] == {"vi": "Nghiêm trọng", "en": "Serious"}
    detail = client.get("/api/playbooks/a4-serious", headers=h).json()
    assert detail["group_label"]["en"] == "Unauthorised access / takeover"
    assert detail["tasks"][0]["id"] == "a-triage" and detail["tasks"][0]["title"]["vi"]
    r = client.get("/api/playbooks/z9-normal", headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    paths = client.get("/api/openapi.json").json()["paths"]
    assert "/api/playbook-runs/{run_id}/tasks/{task_id}" in paths


def test_runs_are_scoped_by_the_incidents_unit_and_state_secret(
    client: TestClient, db: Database
) -> None:
    runs = seed_runs(db)
    admin = auth(db, "root", "admin", ["*"])
    yte = auth(db, "yte", "analyst", ["so-yte"])
    provider = auth(db, "prov", "provider-analyst", ["so-yte", "so-tttt"])
    assert client.get("/api/playbook-runs", headers=admin).json()["count"] == 3
    mine = client.get("/api/playbook-runs", headers=yte).json()
    assert sorted(r["id"] for r in mine["data"]) == sorted([runs["yte"], runs["secret"]])
    assert all(r["unit"] == "so-yte" for r in mine["data"])
    seen = {r["id"] for r in client.get("/api/playbook-runs", headers=provider).json()["data"]}
    assert seen == {runs["tttt"], runs["yte"]}  # never the state-secret system's run
    assert client.get(f"/api/playbook-runs/{runs['tttt']}", headers=yte).status_code == 404
    assert client.get(f"/api/playbook-runs/{2**40}", headers=admin).status_code == 422
    assert client.get(f"/api/playbook-runs/{runs['secret']}", headers=provider).status_code == 404
    detail = client.get(f"/api/playbook-runs/{runs['yte']}", headers=yte).json()
    assert detail["playbook_id"] == "b3-normal" and detail["regime"] == "nd331"
    assert detail["tasks"][0]["due_at"] == "2026-11-23T10:30:00Z"
    assert detail["open_tasks"] == len(detail["tasks"])
    filtered = client.get(
        "/api/playbook-runs", params={"incident_id": detail["incident_id"]}, headers=admin
    ).json()
    assert [r["id"] for r in filtered["data"]] == [runs["yte"]]
    r = client.patch(
        f"/api/playbook-runs/{runs['tttt']}/tasks/a-triage", json={"status": "done"}, headers=yte
    )
    assert r.status_code == 404  # another unit's run cannot be changed either


def test_task_updates_need_the_owner_role_or_admin(client: TestClient, db: Database) -> None:
    runs = seed_runs(db)
    url = f"/api/playbook-runs/{runs['tttt']}/tasks"
    sysadmin = auth(db, "sys", "sysadmin", ["so-tttt"])
    analyst = auth(db, "an", "analyst", ["so-tttt"])
    admin = auth(db, "root", "admin", ["*"])
    r = client.patch(f"{url}/a-triage", json={"status": "done"}, headers=sysadmin)
    assert r.status_code == 403 and "analyst" in r.json()["error"]["message"]
    r = client.patch(f"{url}/a-triage", json={"status": "done", "comment": "real"}, headers=analyst)
    assert r.status_code == 200
    body = r.json()
    assert (body["status"], body["done_by"], body["comment"]) == ("done", "an", "real")
    assert body["done_at"].endswith("Z")
    assert (
        client.patch(
            f"{url}/a-triage", json={"status": "skipped", "comment": "x"}, headers=analyst
        ).status_code
        == 409
    )
    assert (
        client.patch(f"{url}/a-scope", json={"status": "skipped"}, headers=analyst).status_code
        == 409
    )
    assert (
        client.patch(f"{url}/a-scope", json={"status": "open"}, headers=analyst).status_code == 422
    )
    assert client.patch(f"{url}/nope", json={"status": "done"}, headers=admin).status_code == 404
    r = client.patch(f"{url}/a-preserve-evidence", json={"status": "done"}, headers=sysadmin)
    assert r.status_code == 200 and r.json()["done_by"] == "sys"  # the sysadmin's own task
    drill = auth(db, "drill", "drill", ["*"])
    assert client.get(url.rsplit("/", 1)[0], headers=drill).status_code == 200  # reads
    r = client.patch(f"{url}/a-scope", json={"status": "done"}, headers=drill)
    assert r.status_code == 403  # the drill team only reads
    r = client.patch(
        f"{url}/a-eradicate", json={"status": "skipped", "comment": "n/a"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["done_by"] == "root"
    with db.session() as s:
        actions = [
            (r.action, r.actor)
            for r in s.scalars(
                select(AuditRecord).where(AuditRecord.action.like("playbook.task.%"))
            )
        ]
        assert actions == [
            ("playbook.task.done", "an"),
            ("playbook.task.done", "sys"),
            ("playbook.task.skipped", "root"),
        ]
        assert audit.verify(s)[0]


def test_actions_dry_run_by_default_execute_for_admin_or_analyst(
    client: TestClient, db: Database, fortios: tuple[str, FortiOsState]
) -> None:
    _url, state = fortios
    runs = seed_runs(db)
    url = f"/api/playbook-runs/{runs['tttt']}/tasks/a-block-source/execute"
    manager = auth(db, "mgr", "manager", ["so-tttt"])
    analyst = auth(db, "an", "analyst", ["so-tttt"])
    dry = client.post(url, json={}, headers=manager)
    assert dry.status_code == 200
    body: dict[str, Any] = dry.json()
    assert body["dry_run"] and body["ok"] and state.requests == []
    assert body["requests"][0]["json"]["subnet"] == "45.95.147.7 255.255.255.255"
    assert client.post(url, json={"execute": True}, headers=manager).status_code == 403
    assert state.requests == []
    done = client.post(url, json={"execute": True}, headers=analyst).json()
    assert done["ok"] and not done["dry_run"], done["message"]
    assert state.groups["socmon-blocklist"] == ["socmon-block-45.95.147.7"]
    triage = f"/api/playbook-runs/{runs['tttt']}/tasks/a-triage/execute"
    assert client.post(triage, json={}, headers=analyst).status_code == 409
    with db.session() as s:
        recs = s.scalars(
            select(AuditRecord).where(AuditRecord.action.like("playbook.action.%"))
        ).all()
        assert [(r.action, r.actor) for r in recs] == [
            ("playbook.action.dry_run", "mgr"),
            ("playbook.action.execute", "an"),
        ]


def test_reports_and_manual_start(client: TestClient, db: Database) -> None:
    runs = seed_runs(db)
    manager = auth(db, "mgr", "manager", ["so-tttt"])
    sysadmin = auth(db, "sys", "sysadmin", ["so-tttt"])
    url = f"/api/playbook-runs/{runs['tttt']}/tasks/report-72h/report"
    assert client.post(url, headers=sysadmin).status_code == 403
    r = client.post(url, headers=manager)
    assert r.status_code == 200
    docs = r.json()
    assert docs["vi"].startswith("# Báo cáo sự cố 72 giờ") and docs["en"].startswith("# 72 h")
    detail = client.get(f"/api/playbook-runs/{runs['tttt']}", headers=manager).json()
    task = next(t for t in detail["tasks"] if t["task_id"] == "report-72h")
    assert task["result"]["report"]["en"] == docs["en"]

    iid = open_incident(db, unit="so-tttt", group="c4", level="low", created_at=OPENED, rule="r9")
    analyst = auth(db, "an", "analyst", ["so-tttt"])
    other = auth(db, "yte", "analyst", ["so-yte"])
    assert (
        client.post("/api/playbook-runs", json={"incident_id": iid}, headers=manager).status_code
        == 403
    )
    assert (
        client.post("/api/playbook-runs", json={"incident_id": iid}, headers=other).status_code
        == 404
    )
    first = client.post("/api/playbook-runs", json={"incident_id": iid}, headers=analyst)
    assert first.status_code == 201 and first.json()["playbook_id"] == "c4-normal"
    again = client.post("/api/playbook-runs", json={"incident_id": iid}, headers=analyst)
    assert again.json()["id"] == first.json()["id"]
