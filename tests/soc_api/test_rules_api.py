"""GET/PATCH /api/rules over a real catalog, a real SQLite database and the audit log."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from detections.catalog import RuleCatalog, RulePolicy
from soc_api import create_app, create_user, issue_token
from soc_api.audit import verify
from soc_api.models import AuditRecord
from soc_api.routes.rules import RuleSetting
from socmon.corpus import corpus_dir
from socmon.db import Database
from tests.detections.test_catalog import ADMIN_PORT_DENIED, LOGIN_FAILURE, write_fixture_rules

POLICY = RulePolicy(tuning={ADMIN_PORT_DENIED: [{"source.ip": ["198.51.100.7"]}]})


def rule_paths(tmp_path: Path) -> list[Path]:
    broken = tmp_path / "rules"
    broken.mkdir(exist_ok=True)
    (broken / "bad.yml").write_text("title: x\ndetection: [unclosed\n", encoding="utf-8")
    corpus = corpus_dir()
    assert corpus is not None, "the shared corpus is needed (socmon.corpus.corpus_dir())"
    fixture = write_fixture_rules(tmp_path / "fixture")
    return [fixture, corpus / "sigma" / "rules-placeholder" / "windows", broken]


@pytest.fixture
def catalog(tmp_path: Path) -> RuleCatalog:
    return RuleCatalog.load(rule_paths(tmp_path), POLICY)


@pytest.fixture
def client(db: Database, catalog: RuleCatalog) -> Iterator[TestClient]:
    with TestClient(create_app(db, None, catalog=catalog)) as c:
        yield c


def auth(db: Database, role: str, name: str | None = None) -> dict[str, str]:
    with db.session() as s:
        user = create_user(s, name or role, role, ["*"], actor="test")
        token = issue_token(s, user, actor="test")
    return {"Authorization": f"Bearer {token}"}


def error(r: Any) -> str:
    message: str = r.json()["error"]["message"]
    return message


def test_list_accounts_for_every_rule_with_labels(
    client: TestClient, db: Database, catalog: RuleCatalog
) -> None:
    assert client.get("/api/rules").status_code == 401
    h = auth(db, "manager")  # reading is open to every role
    body = client.get("/api/rules?limit=1000", headers=h).json()
    assert body["count"] == len(catalog.entries) == len(body["data"])
    assert body["counts"] == catalog.counts()
    assert body["counts"]["compiled"] == 2 and body["counts"]["error"] == 1
    assert {r["path"] for r in body["data"]} == {str(p) for p in catalog.files}

    unsupported = client.get("/api/rules?status=unsupported", headers=h).json()
    assert unsupported["count"] == body["counts"]["unsupported"] > 0
    first = unsupported["data"][0]
    assert first["status_label"] == {"vi": "Không hỗ trợ", "en": "Unsupported"}
    assert "placeholder" in first["reason"]

    err = client.get("/api/rules?status=error", headers=h).json()["data"][0]
    assert err["status_label"]["vi"] == "Lỗi" and err["reason"].startswith("invalid YAML")
    assert err["line"] is not None
    # A rule without an id is addressed by its path.
    detail = client.get(f"/api/rules/{err['key']}", headers=h)
    assert detail.status_code == 200 and detail.json()["path"] == err["path"]


def test_list_filters_and_pages(client: TestClient, db: Database) -> None:
    h = auth(db, "analyst")
    high = client.get("/api/rules?level=high", headers=h).json()
    assert high["count"] > 0 and all(r["level"] == "high" for r in high["data"])
    assert high["data"][0]["level_label"]["en"] == "High"
    fortigate = client.get("/api/rules?logsource=product:fortigate", headers=h).json()
    assert {r["key"] for r in fortigate["data"]} == {LOGIN_FAILURE, ADMIN_PORT_DENIED}
    assert client.get("/api/rules?logsource=firewall", headers=h).json()["count"] == 2
    found = client.get(f"/api/rules?q={LOGIN_FAILURE[:13]}", headers=h).json()
    assert [r["key"] for r in found["data"]] == [LOGIN_FAILURE]
    assert client.get("/api/rules?q=attack.t1110", headers=h).json()["count"] >= 1

    everything = client.get("/api/rules?limit=1000", headers=h).json()
    page = client.get("/api/rules?offset=2&limit=3", headers=h).json()
    assert page["count"] == everything["count"]
    assert [r["key"] for r in page["data"]] == [r["key"] for r in everything["data"][2:5]]

    r = client.get("/api/rules?status=bogus", headers=h)
    assert r.status_code == 422 and "bogus" in error(r) and "compiled" in error(r)
    r = client.get("/api/rules?level=severe", headers=h)
    assert r.status_code == 422 and "severe" in error(r)
    r = client.get("/api/rules?logsource=vendor:x", headers=h)
    assert r.status_code == 422 and "vendor" in error(r)
    r = client.get("/api/rules?limit=0", headers=h)
    assert r.status_code == 422 and "limit" in error(r)
    r = client.get("/api/rules/no-such-rule", headers=h)
    assert r.status_code == 404 and "no-such-rule" in error(r)


def test_patch_disables_persists_and_is_audited(
    client: TestClient, db: Database, catalog: RuleCatalog, tmp_path: Path
) -> None:
    h = auth(db, "analyst", "lan")
    r = client.patch(f"/api/rules/{LOGIN_FAILURE}", json={"enabled": False}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "disabled" and body["enabled"] is False
    assert body["status_label"] == {"vi": "Đã tắt", "en": "Disabled"}
    assert body["override"]["enabled"] is False and body["override"]["updated_by"] == "lan"
    assert body["configured"] == {"enabled": None, "exceptions": []}
    assert LOGIN_FAILURE not in {rule.id for rule in catalog.matcher.rules}

    with db.session() as s:
        row = s.get(RuleSetting, LOGIN_FAILURE)
        assert row is not None and row.enabled is False and row.exceptions is None
        rec = s.scalars(select(AuditRecord).where(AuditRecord.action == "rule.update")).one()
        assert rec.actor == "lan" and rec.object_id == LOGIN_FAILURE
        assert rec.detail["enabled"] is False and rec.detail["previous"] is None
        assert verify(s)[0]

    # A restarted process (new catalog, new app) picks the change up from the database.
    fresh = RuleCatalog.load(rule_paths(tmp_path), POLICY)
    assert fresh.get(LOGIN_FAILURE).status == "compiled"  # type: ignore[union-attr]
    with TestClient(create_app(db, None, catalog=fresh)) as again:
        got = again.get(f"/api/rules/{LOGIN_FAILURE}", headers=h).json()
    assert got["status"] == "disabled" and fresh.get(LOGIN_FAILURE).status == "disabled"  # type: ignore[union-attr]

    # null returns the rule to the configuration; with nothing left the row goes.
    r = client.patch(f"/api/rules/{LOGIN_FAILURE}", json={"enabled": None}, headers=h)
    assert r.json()["status"] == "compiled" and r.json()["override"] is None
    with db.session() as s:
        assert s.get(RuleSetting, LOGIN_FAILURE) is None
        details = [
            a.detail
            for a in s.scalars(select(AuditRecord).where(AuditRecord.action == "rule.update"))
        ]
    assert details[-1]["previous"] == {"enabled": False, "exceptions": None}
    assert LOGIN_FAILURE in {rule.id for rule in catalog.matcher.rules}


def test_patch_tuning_replaces_configured_exceptions(
    client: TestClient, db: Database, catalog: RuleCatalog
) -> None:
    h = auth(db, "admin")
    event = {
        "event": {"dataset": "fortinet.fortigate", "action": "deny"},
        "source": {"ip": "198.51.100.7"},
        "destination": {"ip": "10.0.0.1", "port": 22},
        "user": {"name": "svc_backup"},
    }
    assert catalog.suppressed(ADMIN_PORT_DENIED, event)  # configured exception
    detail = client.get(f"/api/rules/{ADMIN_PORT_DENIED}", headers=h).json()
    assert detail["configured"]["exceptions"] == [{"source.ip": ["198.51.100.7"]}]

    new = [{"user.name": "svc_backup", "destination.port": [22, 3389]}]
    r = client.patch(f"/api/rules/{ADMIN_PORT_DENIED}", json={"exceptions": new}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["exceptions"] == [
        {"user.name": ["svc_backup"], "destination.port": ["22", "3389"]}
    ]
    assert r.json()["status"] == "compiled"
    assert catalog.suppressed(ADMIN_PORT_DENIED, event)
    assert not catalog.suppressed(ADMIN_PORT_DENIED, {**event, "user": {"name": "root"}})
    with db.session() as s:
        rec = s.scalars(select(AuditRecord).where(AuditRecord.action == "rule.update")).one()
        assert rec.detail["exceptions"] == r.json()["exceptions"] and "enabled" not in rec.detail


@pytest.mark.parametrize("role", ["manager", "sysadmin", "provider-analyst", "drill"])
def test_only_admin_and_analyst_change_rules(
    client: TestClient, db: Database, catalog: RuleCatalog, role: str
) -> None:
    h = auth(db, role)
    r = client.patch(f"/api/rules/{LOGIN_FAILURE}", json={"enabled": False}, headers=h)
    assert r.status_code == 403 and "admin or analyst" in error(r)
    assert client.get(f"/api/rules/{LOGIN_FAILURE}", headers=h).status_code == 200
    assert catalog.get(LOGIN_FAILURE).status == "compiled"  # type: ignore[union-attr]
    with db.session() as s:
        assert (
            s.scalars(select(AuditRecord).where(AuditRecord.action == "rule.update")).first()
            is None
        )


def test_bad_patches_are_422_with_a_message(client: TestClient, db: Database) -> None:
    h = auth(db, "admin")
    url = f"/api/rules/{LOGIN_FAILURE}"
    cases = [
        ({}, "nothing to change"),
        ({"enabled": "maybe"}, "enabled"),
        ({"disabled": True}, "disabled"),
        ({"exceptions": [{}]}, "exceptions.0: an exception is a non-empty mapping"),
        ({"exceptions": [{"user.name": []}]}, "has no value"),
        ({"exceptions": [{"user.name": [{"a": 1}]}]}, "strings or numbers"),
        ({"exceptions": [{" ": ["x"]}]}, "non-empty strings"),
    ]
    for payload, message in cases:
        r = client.patch(url, json=payload, headers=h)
        assert r.status_code == 422, payload
        assert r.json()["error"]["code"] == "invalid_request" and message in error(r), payload
    r = client.patch("/api/rules/no-such-rule", json={"enabled": True}, headers=h)
    assert r.status_code == 404
    with db.session() as s:
        assert s.scalars(select(RuleSetting)).first() is None


def test_without_a_catalog_rules_are_unavailable(db: Database) -> None:
    with TestClient(create_app(db, None)) as c:
        r = c.get("/api/rules", headers=auth(db, "admin"))
    assert r.status_code == 503 and "catalog" in error(r)
