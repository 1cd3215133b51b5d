"""The inventory API: roles, tenancy on every list/detail/export route, changes with
field-level 4xx, labels, import and export."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from inventory.io import import_document, read_yaml
from soc_api import create_app
from soc_api.models import AuditRecord
from socmon.db import Database
from tests.soc_api.access_fixtures import bearer, token_for

pytestmark = pytest.mark.integration

A, B = "so-a", "so-b"

WORLD = f"""\
units:
  - {{code: ubnd, name: UBND tỉnh, kind: province}}
  - {{code: {A}, name: Sở A, parent: ubnd}}
  - {{code: {B}, name: Sở B, parent: ubnd}}
sites:
  - {{code: site-a, name: Trụ sở A, kind: department, unit: {A}}}
  - {{code: site-b, name: Trụ sở B, kind: department, unit: {B}}}
links:
  - {{code: link-a, kind: wan, site: site-a}}
  - {{code: link-b, kind: tslcd, site: site-b}}
zones:
  - {{name: lan-a, kind: agency_lan, cidrs: [10.1.0.0/24], site: site-a}}
  - {{name: lan-b, kind: agency_lan, cidrs: [10.2.0.0/24], site: site-b}}
  - {{name: internet, kind: external, cidrs: [100.64.0.0/10], internal: false}}
systems:
  - {{code: sys-a, name: Hệ thống A, unit: {A}, level: 2, public_ranges: [203.0.113.0/28]}}
  - {{code: sys-b, name: Hệ thống B, unit: {B}, level: 3, assets: [shared-b]}}
  - {{code: sys-mat, name: Hệ thống mật, unit: {B}, level: 4, state_secret: true,
     assets: [mat-b, shared-b], public_ranges: [198.51.100.0/28]}}
assets:
  - {{name: web-a, unit: {A}, zone: lan-a, ips: [10.1.0.10], systems: [sys-a]}}
  - {{name: spare-a, unit: {A}, ips: [10.1.0.11]}}
  - {{name: shared-b, unit: {B}, zone: lan-b, ips: [10.2.0.10]}}
  - {{name: mat-b, unit: {B}, zone: lan-b, ips: [10.2.0.20]}}
"""


@dataclass(frozen=True)
class Obj:
    kind: str
    key: str
    unit: str | None
    secret: bool = False


# The specification, written independently of the route code.
OBJECTS = [
    Obj("units", "ubnd", "ubnd"),
    Obj("units", A, A),
    Obj("units", B, B),
    Obj("sites", "site-a", A),
    Obj("sites", "site-b", B),
    Obj("links", "link-a", A),
    Obj("links", "link-b", B),
    Obj("zones", "lan-a", A),
    Obj("zones", "lan-b", B),
    Obj("zones", "internet", None),
    Obj("systems", "sys-a", A),
    Obj("systems", "sys-b", B),
    Obj("systems", "sys-mat", B, secret=True),
    Obj("assets", "web-a", A),
    Obj("assets", "spare-a", A),
    Obj("assets", "shared-b", B),  # also in a system that is not secret: visible
    Obj("assets", "mat-b", B, secret=True),  # only in the secret system
]
KINDS = ("units", "sites", "links", "zones", "assets", "systems")
KEY = {"zones": "name", "assets": "name"}


@dataclass(frozen=True)
class Caller:
    name: str
    role: str
    units: tuple[str, ...]

    def sees(self, obj: Obj) -> bool:
        if obj.secret and self.role == "provider-analyst":
            return False
        if self.role == "admin" or "*" in self.units:
            return True
        return obj.unit is not None and obj.unit in self.units


CALLERS = (
    Caller("a-analyst", "analyst", (A,)),
    Caller("b-manager", "manager", (B,)),
    Caller("b-sysadmin", "sysadmin", (B,)),
    Caller("provider", "provider-analyst", ("*",)),
    Caller("provider-b", "provider-analyst", (B,)),
    Caller("root", "admin", ()),
)


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    app = create_app(db, None)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def world(db: Database) -> None:
    with db.session() as s:
        result = import_document(s, read_yaml(WORLD, "world.yaml"), actor="test")
        assert result.ok, result.errors


def headers(db: Database, caller: Caller) -> dict[str, str]:
    return bearer(token_for(db, caller.name, caller.role, list(caller.units)))


def test_lists_details_and_export_show_exactly_the_callers_objects(
    client: TestClient, db: Database, world: None
) -> None:
    failures = []
    for caller in CALLERS:
        h = headers(db, caller)
        export = client.get("/api/inventory/export", headers=h)
        assert export.status_code == 200, export.text
        exported = yaml.safe_load(export.text)
        for kind in KINDS:
            want = sorted(o.key for o in OBJECTS if o.kind == kind and caller.sees(o))
            r = client.get(f"/api/inventory/{kind}", headers=h, params={"limit": 1000})
            assert r.status_code == 200, r.text
            got = sorted(item["id"] for item in r.json()["data"])
            if got != want or r.json()["count"] != len(want):
                failures.append(f"{caller.name} GET /{kind}: {got}, expected {want}")
            got_export = sorted(row[KEY.get(kind, "code")] for row in exported[kind])
            if got_export != want:
                failures.append(f"{caller.name} export {kind}: {got_export}, expected {want}")
            for obj in (o for o in OBJECTS if o.kind == kind):
                d = client.get(f"/api/inventory/{kind}/{obj.key}", headers=h)
                expected = 200 if caller.sees(obj) else 404
                if d.status_code != expected:
                    failures.append(f"{caller.name} GET /{kind}/{obj.key}: {d.status_code}")
                elif expected == 404:
                    assert set(d.json()) == {"error"}
        # Member lists never name what the caller cannot see.
        for system in exported["systems"]:
            for name in system.get("assets", []):
                assert caller.sees(next(o for o in OBJECTS if o.key == name)), (caller, name)
    assert not failures, "\n".join(failures)


def test_csv_export_is_scoped(client: TestClient, db: Database, world: None) -> None:
    import io
    import zipfile

    r = client.get(
        "/api/inventory/export",
        headers=headers(db, Caller("pa", "provider-analyst", ("*",))),
        params={"format": "csv"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    files = zipfile.ZipFile(io.BytesIO(r.content))
    text = "".join(files.read(n).decode("utf-8") for n in files.namelist())
    assert "sys-mat" not in text and "mat-b" not in text and "198.51.100.0/28" not in text
    assert "shared-b" in text and "sys-b" in text


def test_filters_do_not_widen_the_scope(client: TestClient, db: Database, world: None) -> None:
    h = headers(db, Caller("a", "analyst", (A,)))
    for kind, params in (
        ("assets", {"unit": B}),
        ("systems", {"unit": B}),
        ("sites", {"unit": B}),
        ("zones", {"site": "site-b"}),
        ("assets", {"system": "sys-b"}),
    ):
        r = client.get(f"/api/inventory/{kind}", headers=h, params=params)
        assert r.status_code == 200 and r.json() == {"data": [], "count": 0}


def test_drill_role_is_refused(client: TestClient, db: Database, world: None) -> None:
    h = headers(db, Caller("d", "drill", ("*",)))
    for path in ("/api/inventory/assets", "/api/inventory/systems/sys-a", "/api/inventory/export"):
        assert client.get(path, headers=h).status_code == 403


def test_labels_and_detail_shape(client: TestClient, db: Database, world: None) -> None:
    h = headers(db, Caller("root", "admin", ()))
    sys_a = client.get("/api/inventory/systems/sys-a", headers=h).json()
    assert sys_a["dossier_status"] == "draft"
    assert sys_a["dossier_status_label"]["vi"] == "Đang lập hồ sơ"
    assert sys_a["regime_label"]["en"].startswith("Decree 85")
    assert sys_a["public_ranges"][0]["ncsc_status_label"]["vi"] == "Chưa đăng ký"
    assert sys_a["assets"] == ["web-a"]
    web = client.get("/api/inventory/assets/web-a", headers=h).json()
    assert web["kind_label"] == {"vi": "Máy chủ", "en": "Server"} and web["systems"] == ["sys-a"]
    zone = client.get("/api/inventory/zones/lan-a", headers=h).json()
    assert zone["kind_label"]["vi"] == "Mạng LAN cơ quan"


def test_sysadmin_changes_only_assets_of_their_units(
    client: TestClient, db: Database, world: None
) -> None:
    h = headers(db, Caller("sa", "sysadmin", (B,)))
    new = {"name": "db-b2", "unit": B, "zone": "lan-b", "ips": ["10.2.0.30"], "os": "Ubuntu 24.04"}
    r = client.post("/api/inventory/assets", headers=h, json=new)
    assert r.status_code == 201, r.text
    assert r.json()["ips"] == ["10.2.0.30"]
    r = client.post("/api/inventory/assets", headers=h, json={**new, "name": "x", "unit": A})
    assert r.status_code == 403
    r = client.patch("/api/inventory/assets/web-a", headers=h, json={"os": "x"})
    assert r.status_code == 404  # not in scope: as if it did not exist
    r = client.patch("/api/inventory/assets/db-b2", headers=h, json={"unit": A})
    assert r.status_code == 403
    r = client.patch(
        "/api/inventory/assets/db-b2", headers=h, json={"log_sources": ["system.auth"]}
    )
    assert r.status_code == 200 and r.json()["log_sources"] == ["system.auth"]
    assert client.delete("/api/inventory/assets/db-b2", headers=h).status_code == 204
    for path, body in (
        ("/api/inventory/units", {"code": "x", "name": "X"}),
        ("/api/inventory/zones", {"name": "z", "cidrs": ["10.9.0.0/24"]}),
        ("/api/inventory/systems", {"code": "s", "unit": B, "level": 2}),
    ):
        assert client.post(path, headers=h, json=body).status_code == 403
    analyst = headers(db, Caller("an", "analyst", ("*",)))
    assert client.post("/api/inventory/assets", headers=analyst, json=new).status_code == 403
    # A denied caller gets 403 before its body is even read.
    assert client.post("/api/inventory/assets", headers=analyst).status_code == 403
    assert client.post("/api/inventory/import", headers=h).status_code == 403
    with db.session() as s:
        actions = set(s.scalars(select(AuditRecord.action)))
    assert {"inventory.asset.create", "inventory.asset.update", "inventory.asset.delete"} <= actions


def test_admin_changes_with_clear_errors(client: TestClient, db: Database, world: None) -> None:
    h = headers(db, Caller("root", "admin", ()))
    r = client.post(
        "/api/inventory/units", headers=h, json={"code": "x1", "parent": A, "kind": "commune"}
    )
    assert r.status_code == 201 and r.json()["kind_label"]["en"] == "Commune / ward"
    r = client.patch(f"/api/inventory/units/{A}", headers=h, json={"parent": "x1"})
    assert r.status_code == 422 and "cycle" in r.json()["error"]["message"]
    r = client.patch("/api/inventory/units/x1", headers=h, json={"parent": B})
    assert r.status_code == 200 and r.json()["parent"] == B
    r = client.post("/api/inventory/units", headers=h, json={"code": "x1"})
    assert r.status_code == 409
    r = client.post(
        "/api/inventory/zones",
        headers=h,
        json={"name": "lan-a2", "cidrs": ["10.1.0.128/25"], "site": "site-a"},
    )
    assert r.status_code == 422 and "lan-a" in r.json()["error"]["message"]
    r = client.post(
        "/api/inventory/assets", headers=h, json={"name": "dup", "unit": A, "ips": ["10.1.0.10"]}
    )
    assert r.status_code == 422 and "web-a" in r.json()["error"]["message"]
    r = client.post("/api/inventory/assets", headers=h, json={"name": "x", "unit": A, "colour": 1})
    assert r.status_code == 422
    r = client.post(
        "/api/inventory/systems",
        headers=h,
        json={
            "code": "sys-new",
            "unit": A,
            "level": 3,
            "dossier_status": "approved",
            "decision_number": "1/QĐ-UBND",
            "decision_date": "2025-03-01",
            "regime": "nd331",
            "assets": ["spare-a"],
            "public_ranges": [
                {
                    "cidr": "203.0.113.20/28",
                    "ncsc_status": "registered",
                    "registered_on": "2025-04-01",
                }
            ],
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["public_ranges"][0]["cidr"] == "203.0.113.16/28" and body["assets"] == ["spare-a"]
    r = client.patch(
        "/api/inventory/systems/sys-new",
        headers=h,
        json={"public_ranges": [{"cidr": "203.0.113.0/27"}]},
    )
    assert r.status_code == 422 and "sys-a" in r.json()["error"]["message"]
    r = client.patch("/api/inventory/systems/sys-new", headers=h, json={"level": 4, "assets": []})
    assert r.status_code == 200 and r.json()["level"] == 4 and r.json()["assets"] == []
    assert client.delete("/api/inventory/zones/lan-a", headers=h).status_code == 409
    assert client.delete("/api/inventory/links/link-a", headers=h).status_code == 204
    assert client.delete("/api/inventory/systems/sys-new", headers=h).status_code == 204
    assert client.get("/api/inventory/systems/sys-new", headers=h).status_code == 404
    assert client.get("/api/inventory/units/" + "x" * 500, headers=h).status_code == 422


def test_import_route(client: TestClient, db: Database, world: None) -> None:
    h = headers(db, Caller("root", "admin", ()))
    doc = "units:\n  - {code: so-c, name: Sở C, parent: ubnd}\n"
    r = client.post(
        "/api/inventory/import",
        headers={**h, "Content-Type": "application/yaml"},
        content=doc.encode(),
        params={"dry_run": "true"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["counts"]["units"]["created"] == 1 and r.json()["dry_run"]
    assert client.get("/api/inventory/units/so-c", headers=h).status_code == 404
    bad = "units:\n  - {code: so-c, parent: nope}\n  - {code: so-d, kind: planet}\n"
    r = client.post(
        "/api/inventory/import", headers={**h, "Content-Type": "application/yaml"}, content=bad
    )
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [(2, "units.parent"), (3, "units.kind")]
    assert r.json()["error"]["code"] == "invalid_inventory"
    r = client.post(
        "/api/inventory/import", headers={**h, "Content-Type": "application/yaml"}, content=doc
    )
    assert r.status_code == 200
    assert client.get("/api/inventory/units/so-c", headers=h).status_code == 200
    # The CSV export of everything imports back as a zip (unchanged).
    z = client.get("/api/inventory/export", headers=h, params={"format": "csv"}).content
    r = client.post(
        "/api/inventory/import",
        headers={**h, "Content-Type": "application/zip"},
        content=z,
        params={"format": "csv"},
    )
    assert r.status_code == 200, r.text
    assert all(c["created"] == 0 and c["updated"] == 0 for c in r.json()["counts"].values())
    sa = headers(db, Caller("sa", "sysadmin", ("*",)))
    assert client.post("/api/inventory/import", headers=sa, content=doc).status_code == 403
    assert client.post("/api/inventory/import", headers=h, content=b"").status_code == 422


def test_openapi_lists_the_inventory(client: TestClient, db: Database) -> None:
    paths: dict[str, Any] = client.get("/api/openapi.json").json()["paths"]
    assert "/api/inventory/systems/{code}" in paths and "/api/inventory/import" in paths
