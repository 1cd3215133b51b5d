"""The compliance routes: roles, tenancy (units, state-secret systems), attest/revoke/record
flows with re-evaluation on change, and clear 4xx errors."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from soc_api import create_app
from soc_api.models import AuditRecord
from soc_api.routes import compliance
from socmon.db import Database
from socmon.store import Store
from tests.soc_api.access_fixtures import ROLES, bearer, token_for
from tests.soc_api.compliance.world import A, B, add_world

pytestmark = pytest.mark.integration

READ = {"admin", "manager", "analyst", "provider-analyst", "sysadmin"}
EDIT = {"admin", "manager"}
_n = itertools.count()
POLICY = "TCVN11930.MGMT.POLICY"


@pytest.fixture
def client(db: Database, store: Store) -> Iterator[TestClient]:
    app = create_app(db, store, embedded=True)
    paths = {getattr(r, "path", "") for r in app.routes}
    if "/api/compliance/summary" not in paths:  # until soc_api/app.py registers the router
        app.include_router(compliance.router, prefix="/api")
    with db.session() as s:
        add_world(s)
    with TestClient(app) as c:
        yield c


def headers(db: Database, role: str, units: list[str]) -> dict[str, str]:
    return bearer(token_for(db, f"{role}-{next(_n)}", role, units))


def attestation(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "control": POLICY,
        "system": "DVC",
        "document_ref": "QĐ 12/2026",
        "attester": "Giám đốc Sở TTTT",
        "attested_on": (datetime.now(UTC).date() - timedelta(days=10)).isoformat(),
    }
    return body | over


ROUTES: list[tuple[str, str, Any, set[str]]] = [
    ("GET", "/api/compliance/summary", None, READ),
    ("GET", "/api/compliance/systems", None, READ),
    ("GET", "/api/compliance/systems/DVC", None, READ),
    ("GET", "/api/compliance/controls", None, READ),
    ("GET", "/api/compliance/attestations", None, READ),
    ("GET", "/api/compliance/records", None, READ),
    ("GET", "/api/compliance/report?format=json", None, READ),
    ("POST", "/api/compliance/attestations", attestation, EDIT),
    ("DELETE", "/api/compliance/attestations/999999", None, EDIT),
    (
        "POST",
        "/api/compliance/records",
        lambda: {
            "kind": "drill",
            "unit": A,
            "occurred_at": datetime.now(UTC).isoformat(),
            "summary": "drill",
        },
        EDIT,
    ),
    ("POST", "/api/compliance/evaluate", None, EDIT),
]


def test_roles_on_every_compliance_route(client: TestClient, db: Database) -> None:
    tokens = {role: headers(db, role, ["*"]) for role in ROLES}
    failures = []
    for method, path, body, allowed in ROUTES:
        for role in ROLES:
            kwargs: dict[str, Any] = {"headers": tokens[role]}
            if body is not None:
                kwargs["json"] = body()
            r = client.request(method, path, **kwargs)
            denied = r.status_code == 403
            if denied == (role in allowed) or r.status_code == 401:
                failures.append(f"{role} {method} {path}: {r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)
    assert client.get("/api/compliance/summary").status_code == 401


def test_scope_limits_systems_attestations_and_records(client: TestClient, db: Database) -> None:
    admin = headers(db, "admin", [])
    r = client.post("/api/compliance/evaluate", headers=admin)
    assert r.status_code == 200 and r.json()["province"]["systems"] == 3, r.text
    for system, unit in (("DVC", A), ("YTE", B), ("QLVB-MAT", A)):
        body = attestation(system=system)
        assert (
            client.post("/api/compliance/attestations", headers=admin, json=body).status_code == 201
        )
        rec = {"kind": "scan", "system": system, "unit": unit, "summary": "scan",
               "occurred_at": datetime.now(UTC).isoformat()}  # fmt: skip
        assert client.post("/api/compliance/records", headers=admin, json=rec).status_code == 201

    def seen(h: dict[str, str]) -> dict[str, list[str]]:
        out = {}
        out["systems"] = sorted(
            s["code"] for s in client.get("/api/compliance/systems", headers=h).json()["data"]
        )
        out["attestations"] = sorted(
            a["system"]
            for a in client.get("/api/compliance/attestations", headers=h).json()["data"]
        )
        out["records"] = sorted(
            a["system"] for a in client.get("/api/compliance/records", headers=h).json()["data"]
        )
        return out

    everything = ["DVC", "QLVB-MAT", "YTE"]
    assert seen(admin) == {"systems": everything, "attestations": everything, "records": everything}
    b_manager = headers(db, "manager", [B])
    assert seen(b_manager) == {"systems": ["YTE"], "attestations": ["YTE"], "records": ["YTE"]}
    provider = headers(db, "provider-analyst", ["*"])
    visible = ["DVC", "YTE"]
    assert seen(provider) == {"systems": visible, "attestations": visible, "records": visible}
    a_analyst = headers(db, "analyst", [A])
    assert seen(a_analyst)["systems"] == ["DVC", "QLVB-MAT"]

    # the manager report (a page in a browser) holds the caller's systems only
    names = {"DVC": "", "YTE": "", "QLVB-MAT": ""}
    for s_ in client.get("/api/compliance/systems", headers=admin).json()["data"]:
        names[s_["code"]] = s_["name"]
    for h, want in ((b_manager, {"YTE"}), (provider, {"DVC", "YTE"}), (admin, set(everything))):
        page = client.get("/api/compliance/report", headers=h, params={"lang": "en"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        shown = {code for code, name in names.items() if f">{escape(name)}<" in page.text}
        assert shown == want, (want, shown)
        data = client.get("/api/compliance/report", headers=h, params={"format": "json"}).json()
        assert {x["code"] for x in data["systems"]} == want

    # details outside the scope are 404 with the error model only
    for h, code in ((b_manager, "DVC"), (provider, "QLVB-MAT"), (a_analyst, "YTE")):
        r = client.get(f"/api/compliance/systems/{code}", headers=h)
        assert r.status_code == 404 and set(r.json()) == {"error"}, (code, r.text)
    assert client.get("/api/compliance/systems/YTE", headers=b_manager).status_code == 200
    # the province summary counts only the caller's systems
    summary = client.get("/api/compliance/summary", headers=b_manager).json()
    assert summary["province"]["systems"] == 1
    assert [lv["level"] for lv in summary["province"]["by_level"]] == [2]

    # a manager cannot attest, record or revoke outside their units
    r = client.post("/api/compliance/attestations", headers=b_manager, json=attestation())
    assert r.status_code == 404 and "DVC" in r.json()["error"]["message"]
    rec = {"kind": "drill", "unit": A, "summary": "x", "occurred_at": datetime.now(UTC).isoformat()}
    assert client.post("/api/compliance/records", headers=b_manager, json=rec).status_code == 404
    dvc = client.get("/api/compliance/attestations", headers=admin, params={"system": "DVC"})
    att_id = dvc.json()["data"][0]["id"]
    r = client.delete(f"/api/compliance/attestations/{att_id}", headers=b_manager)
    assert r.status_code == 404


def test_attest_revoke_and_record_reevaluate_the_system(client: TestClient, db: Database) -> None:
    manager = headers(db, "manager", [A])

    def status(control: str) -> dict[str, Any]:
        r = client.get("/api/compliance/systems/DVC", headers=manager)
        assert r.status_code == 200, r.text
        return next(c for c in r.json()["controls"] if c["id"] == control)

    assert status(POLICY)["reason"] == "not evaluated yet"
    expires = datetime.now(UTC).date() + timedelta(days=30)
    r = client.post(
        "/api/compliance/attestations",
        headers=manager,
        json=attestation(expires_on=expires.isoformat()),
    )
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["unit"] == A and att["expired"] is False and att["created_by"].startswith("manager")
    got = status(POLICY)
    assert got["status"] == "pass" and got["evidence"]["document_ref"] == "QĐ 12/2026"
    assert got["due"] == expires.isoformat()

    r = client.delete(f"/api/compliance/attestations/{att['id']}", headers=manager)
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert status(POLICY)["status"] == "fail"
    again = client.delete(f"/api/compliance/attestations/{att['id']}", headers=manager)
    assert again.status_code == 409
    listed = client.get("/api/compliance/attestations", headers=manager).json()
    assert listed["count"] == 0
    listed = client.get(
        "/api/compliance/attestations", headers=manager, params={"include_revoked": True}
    ).json()
    assert [a["id"] for a in listed["data"]] == [att["id"]]

    # an organisation duty: the unit's drill record passes it for every system of the unit
    drill = "ND85.ART20.TRAINING_DRILL"
    r = client.post(
        "/api/compliance/records",
        headers=manager,
        json={
            "kind": "drill",
            "unit": A,
            "occurred_at": (datetime.now(UTC) - timedelta(days=30)).isoformat(),
            "summary": "Diễn tập thực chiến 2026",
        },
    )
    assert r.status_code == 201, r.text
    assert status(drill)["status"] == "pass"

    with db.session() as s:
        actions = [a.action for a in s.scalars(select(AuditRecord).order_by(AuditRecord.id))]
    assert [a for a in actions if a.startswith("compliance.")] == [
        "compliance.attest",
        "compliance.revoke",
        "compliance.record",
    ]


def test_clear_errors(client: TestClient, db: Database) -> None:
    manager = headers(db, "manager", [A])

    def post(**over: Any) -> Any:
        return client.post(
            "/api/compliance/attestations", headers=manager, json=attestation(**over)
        )

    r = post(control="NO.SUCH.CONTROL")
    assert r.status_code == 422 and "unknown control id" in r.json()["error"]["message"]
    today = datetime.now(UTC).date()
    r = post(expires_on=(today - timedelta(days=30)).isoformat())
    assert r.status_code == 422 and "expires_on is before attested_on" in r.text
    r = post(control="ND85.ART20.ORG_ASSESSMENT")
    assert r.status_code == 422 and "give `unit`" in r.text
    r = post(control="ND85.ART20.ORG_ASSESSMENT", system=None, unit=A)
    assert r.status_code == 201, r.text
    r = post(system="NOPE")
    assert r.status_code == 404
    r = post(system="DVC", unit=B)
    assert r.status_code == 422 and "belongs to unit" in r.text
    r = post(attested_on=(today + timedelta(days=10)).isoformat())
    assert r.status_code == 422 and "future" in r.text
    rec = {"kind": "party", "unit": A, "summary": "x", "occurred_at": datetime.now(UTC).isoformat()}
    r = client.post("/api/compliance/records", headers=manager, json=rec)
    assert r.status_code == 422 and "unknown record kind" in r.text
    rec |= {"kind": "drill", "occurred_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    r = client.post("/api/compliance/records", headers=manager, json=rec)
    assert r.status_code == 422 and "future" in r.text
    assert client.delete("/api/compliance/attestations/0", headers=manager).status_code == 422


def test_catalogue_route(client: TestClient, db: Database) -> None:
    h = headers(db, "analyst", [A])
    body = client.get("/api/compliance/controls", headers=h).json()
    assert body["count"] == len(body["data"]) >= 67 and body["version"].startswith(body["as_of"])
    by_id = {c["id"]: c for c in body["data"]}
    assert by_id["LAYER4.NATIONAL_MONITORING_LINK"]["layer"] == 4
    assert by_id["TCVN11930.MGMT.OPS.RISK"]["enforced"] is False
    nd331 = client.get("/api/compliance/controls", headers=h, params={"regime": "nd331"}).json()
    assert {c["regime"] for c in nd331["data"]} == {"nd331", "both"}
    level1 = client.get("/api/compliance/controls", headers=h, params={"level": 1}).json()
    assert all(c["min_level"] == 1 for c in level1["data"])
    assert date.fromisoformat(body["as_of"])
