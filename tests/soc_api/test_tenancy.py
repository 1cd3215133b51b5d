"""Tenancy: every list, detail and search route shows a caller exactly the objects of its units,
and provider analysts never anything of a system flagged state-secret.

The tables below name every GET route of the application: a scoped route with the objects it
returns, or an unscoped one with the reason. A new GET route that is in neither table fails
`test_every_get_route_is_classified` — declare it here (and test it) when you add it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from inventory.tables import (
    AssetRow,
    AttestationRow,
    LinkRow,
    RecordRow,
    SiteRow,
    SystemAssetRow,
    SystemRow,
    UnitRow,
    ZoneRow,
)
from soc_api import IncidentService, create_app
from soc_api.models import Incident, Suppression
from socmon.db import Database
from socmon.store import Store
from tests.soc_api.access_fixtures import alert_doc, bearer, put_alerts, token_for

pytestmark = pytest.mark.integration

A, B = "so-tttt", "so-yte"


@dataclass(frozen=True)
class Obj:
    """One seeded object: the key its routes show it by, its unit, its state-secret flag."""

    kind: str
    key: str
    unit: str | None
    secret: bool = False


@dataclass(frozen=True)
class Caller:
    name: str
    role: str
    units: tuple[str, ...]

    def sees(self, obj: Obj) -> bool:
        """Written from the specification, independently of `soc_api.deps.Scope`."""
        if obj.secret and self.role == "provider-analyst":
            return False
        if self.role == "admin" or "*" in self.units:
            return True
        return obj.unit is not None and obj.unit in self.units


CALLERS = (
    Caller("a-analyst", "analyst", (A,)),
    Caller("b-analyst", "analyst", (B,)),
    Caller("b-manager", "manager", (B,)),
    Caller("provider", "provider-analyst", ("*",)),
    Caller("provider-a", "provider-analyst", (A,)),
    Caller("root", "admin", ()),
)

Keys = Callable[[Any], list[str]]


def _data_ids(body: Any) -> list[str]:
    return [str(item["id"]) for item in body["data"]]


def _codes(body: Any) -> list[str]:
    return [str(item["code"]) for item in body["data"]]


def _names(body: Any) -> list[str]:
    return [str(item["name"]) for item in body["data"]]


def _source_keys(body: Any) -> list[str]:
    return [f"{item['host']}/{item['source']}" for item in body["data"]]


def _suppression_ids(body: Any) -> list[str]:
    items = body["data"] if isinstance(body, dict) else body
    return [str(item["id"]) for item in items]


# GET route -> (kind of object, how to read keys from a list response or None for a detail route)
SCOPED: dict[str, tuple[str, Keys | None]] = {
    "/api/incidents": ("incident", _data_ids),
    "/api/incidents/{incident_id}": ("incident", None),
    "/api/incidents/{incident_id}/observables": ("incident", None),
    "/api/alerts": ("alert", _data_ids),
    "/api/alerts/{alert_id}": ("alert", None),
    "/api/sources": ("source", _source_keys),
    "/api/suppressions": ("suppression", _suppression_ids),
    "/api/suppressions/{suppression_id}": ("suppression", None),
    "/api/playbook-runs": ("run", _data_ids),
    "/api/playbook-runs/{run_id}": ("run", None),
    "/api/inventory/units": ("unit", _codes),
    "/api/inventory/units/{code}": ("unit", None),
    "/api/inventory/sites": ("site", _codes),
    "/api/inventory/sites/{code}": ("site", None),
    "/api/inventory/links": ("link", _codes),
    "/api/inventory/links/{code}": ("link", None),
    "/api/inventory/zones": ("zone", _names),
    "/api/inventory/zones/{name}": ("zone", None),
    "/api/inventory/assets": ("asset", _names),
    "/api/inventory/assets/{name}": ("asset", None),
    "/api/inventory/systems": ("system", _codes),
    "/api/inventory/systems/{code}": ("system", None),
    "/api/compliance/systems": ("system", _codes),
    "/api/compliance/systems/{code}": ("system", None),
    "/api/compliance/attestations": ("attestation", _data_ids),
    "/api/compliance/records": ("compliance_record", _data_ids),
}
# Export routes (CSV or JSON lines) -> the kind of object each line is.
EXPORTS: dict[str, str] = {"/api/incidents/export": "incident", "/api/alerts/export": "alert"}
UNSCOPED: dict[str, str] = {
    "/api/health": "no unit data, no authentication",
    "/api/roles": "the fixed list of roles",
    "/api/me": "the caller's own record",
    "/api/rules": "rule files and their health: no unit's data",
    "/api/rules/{key:path}": "one rule: no unit's data",
    "/api/users": "admin only; admins see every unit",
    "/api/users/{user_id}": "admin only",
    "/api/users/{user_id}/tokens": "admin only",
    "/api/playbooks": "the playbook library: no unit's data",
    "/api/playbooks/{playbook_id}": "one playbook of the library",
    "/metrics": "process counters, admin and sysadmin only",
    "/api/openapi.json": "the schema",
    "/api/docs": "the schema's page",
    "/docs/oauth2-redirect": "part of the schema's page",
    "/api/compliance/summary": "totals over the caller's systems only (tested in test_compliance_api)",
    "/api/compliance/controls": "the control catalogue: no unit's data",
    "/api/compliance/report": "HTML/PDF of the caller's systems: tested in test_compliance_api",
    "/": "a redirect to the console",
    "/console/login": "the console's login form",
    **{
        page: "cookie-authenticated page: tests/soc_api/console/test_console.py"
        for page in (
            "/console/incidents",
            "/console/incidents/{incident_id}",
            "/console/sources",
            "/console/systems",
            "/console/compliance",
        )
    },
    "/api/inventory/export": "YAML or zip, scoped like the lists: tests/soc_api/test_inventory_api.py",
}


def get_paths(app: Any) -> set[str]:
    return {
        str(rc.path)
        for rc in iter_route_contexts(app.routes)
        if "GET" in (getattr(rc, "methods", None) or set())
    }


@pytest.fixture
def client(db: Database, store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(db, store, embedded=True)) as c:
        yield c


@pytest.fixture
def world(db: Database, store: Store, client: TestClient) -> list[Obj]:
    """Alerts, incidents, sources and suppressions of units A and B, some state-secret."""
    specs = [  # (n, unit, side carrying the state-secret flag)
        (1, A, None),
        (2, A, "destination"),
        (3, B, None),
        (4, B, "observer"),
        (5, B, "source"),
        (6, None, None),
    ]
    docs = [
        alert_doc(n, unit=unit, secret_side=side, rule_id=f"r-{n}", ts=f"2026-11-23T10:0{n}:00Z")
        for n, unit, side in specs
    ]
    put_alerts(store, docs)
    objs = [
        Obj("alert", doc_id, unit, side is not None)
        for (doc_id, _), (_, unit, side) in zip(docs, specs, strict=True)
    ]

    svc = IncidentService(window=timedelta(hours=1))
    with db.session() as s:
        for doc_id, doc in docs:
            svc.ingest(s, doc_id, doc)
    with db.session() as s:
        for inc in s.scalars(select(Incident)):
            n = int(inc.rule_id.split("-")[1])
            unit, side = specs[n - 1][1], specs[n - 1][2]
            assert inc.unit == unit and inc.state_secret is (side is not None)  # precondition
            objs.append(Obj("incident", str(inc.id), unit, inc.state_secret))
        now = datetime.now(UTC)
        for unit in (A, B, None):
            sup = Suppression(
                rule_id=f"r-sup-{unit}",
                match={"source.ip": "192.0.2.1"},
                reason="test",
                unit=unit,
                expires_at=now + timedelta(days=1),
                created_by="test",
                created_at=now,
            )
            s.add(sup)
            s.flush()
            objs.append(Obj("suppression", str(sup.id), unit))

    rows = []
    for host, unit in (("web-a", A), ("db-b", B), ("fw-x", None)):
        row: dict[str, Any] = {
            "source": "/var/log/auth.log",
            "host": host,
            "collector": "file",
            "first_seen": 1.0,
            "last_seen": 2.0,
            "eps": 0.0,
            "events": 1,
            "bytes": 10,
            "parse_failures": 0,
            "drops": 0,
        }
        if unit:
            row["unit"] = unit
        rows.append((f"{host}-auth", row))
        objs.append(Obj("source", f"{host}//var/log/auth.log", unit))
    store.upsert(store.sources_target, rows)
    store.refresh(store.sources_target)

    if "/api/playbook-runs" in get_paths(client.app):  # a run per incident, started by an admin
        h = bearer(token_for(db, "seeder", "admin", ["*"]))
        for owner in [o for o in objs if o.kind == "incident"]:
            r = client.post("/api/playbook-runs", headers=h, json={"incident_id": int(owner.key)})
            assert r.status_code == 201, r.text
            objs.append(Obj("run", str(r.json()["id"]), owner.unit, owner.secret))
    objs += seed_inventory(db)
    assert {"alert", "incident", "suppression", "source"} <= {o.kind for o in objs}
    return objs


def seed_inventory(db: Database) -> list[Obj]:
    """Units A and B, each with a site, a link, a zone, assets and systems (one of A's
    state-secret, with an asset that belongs only to it); each system with an attestation
    and a compliance record."""
    now = datetime.now(UTC)
    objs: list[Obj] = []
    with db.session() as s:
        for n, unit in enumerate((A, B)):
            s.add(UnitRow(code=unit, name=unit, kind="department", updated_at=now))
            s.flush()
            site = SiteRow(
                code=f"site-{unit}", name=unit, kind="department", unit=unit, updated_at=now
            )
            s.add(site)
            s.flush()
            s.add(LinkRow(code=f"link-{unit}", kind="wan", site=site.code, updated_at=now))
            s.add(
                ZoneRow(
                    name=f"lan-{unit}",
                    kind="agency_lan",
                    cidrs=[f"10.{n + 50}.0.0/24"],
                    internal=True,
                    site=site.code,
                    updated_at=now,
                )
            )
            objs += [
                Obj("unit", unit, unit),
                Obj("site", site.code, unit),
                Obj("link", f"link-{unit}", unit),
                Obj("zone", f"lan-{unit}", unit),
            ]
        s.flush()
        for code, unit, secret in (
            ("SYS-A", A, False),
            ("SYS-A-MAT", A, True),
            ("SYS-B", B, False),
        ):
            s.add(
                SystemRow(
                    code=code,
                    name=code,
                    unit=unit,
                    level=3,
                    dossier_status="approved",
                    regime="nd85",
                    state_secret=secret,
                    updated_at=now,
                )
            )
            s.flush()
            objs.append(Obj("system", code, unit, secret))
            att = AttestationRow(
                control="TCVN11930.MGMT.POLICY",
                system=code,
                unit=unit,
                document_ref=f"QĐ {code}",
                attester="test",
                attested_on=now.date(),
                detail={},
                created_by="test",
                created_at=now,
            )
            rec = RecordRow(
                kind="drill",
                system=code,
                unit=unit,
                occurred_at=now,
                summary=f"drill {code}",
                detail={},
                created_by="test",
                created_at=now,
            )
            s.add_all([att, rec])
            s.flush()
            objs.append(Obj("attestation", str(att.id), unit, secret))
            objs.append(Obj("compliance_record", str(rec.id), unit, secret))
            asset = AssetRow(
                name=f"srv-{code.lower()}",
                kind="server",
                role="server",
                unit=unit,
                ips=[],
                hostnames=[],
                virtual=True,
                log_sources=[],
                updated_at=now,
            )
            s.add(asset)
            s.flush()
            s.add(SystemAssetRow(system=code, asset=asset.name))
            objs.append(Obj("asset", asset.name, unit, secret))
    return objs


def test_every_get_route_is_classified(client: TestClient) -> None:
    paths = get_paths(client.app)
    missing = sorted(paths - (SCOPED.keys() | UNSCOPED.keys() | EXPORTS.keys()))
    assert not missing, f"GET routes missing from the tenancy tables: {missing}"


def test_lists_show_exactly_the_callers_objects(
    client: TestClient, db: Database, world: list[Obj]
) -> None:
    paths = get_paths(client.app)
    failures = []
    checked = 0
    for caller in CALLERS:
        h = bearer(token_for(db, caller.name, caller.role, list(caller.units)))
        for path, (kind, keys) in SCOPED.items():
            if keys is None or path not in paths:
                continue
            r = client.get(path, headers=h, params={"limit": 500})
            assert r.status_code == 200, (path, caller, r.text)
            got = sorted(keys(r.json()))
            want = sorted(o.key for o in world if o.kind == kind and caller.sees(o))
            checked += 1
            if got != want:
                failures.append(f"{caller.name} GET {path}: got {got}, expected {want}")
    assert not failures, "\n".join(failures)
    assert checked >= 3 * len(CALLERS)


def test_exports_hold_exactly_the_callers_objects(
    client: TestClient, db: Database, world: list[Obj]
) -> None:
    failures = []
    for caller in CALLERS:
        h = bearer(token_for(db, caller.name, caller.role, list(caller.units)))
        for path, kind in EXPORTS.items():
            r = client.get(path, headers=h, params={"format": "json"})
            assert r.status_code == 200, (path, caller, r.text)
            got = sorted(str(json.loads(line)["id"]) for line in r.text.splitlines())
            want = sorted(o.key for o in world if o.kind == kind and caller.sees(o))
            if got != want:
                failures.append(f"{caller.name} GET {path}: got {got}, expected {want}")
    assert not failures, "\n".join(failures)


def test_details_of_other_units_and_secret_systems_are_404(
    client: TestClient, db: Database, world: list[Obj]
) -> None:
    paths = get_paths(client.app)
    failures = []
    for caller in CALLERS:
        h = bearer(token_for(db, caller.name, caller.role, list(caller.units)))
        for path, (kind, keys) in SCOPED.items():
            if keys is not None or path not in paths:
                continue
            param = path[path.index("{") + 1 : path.index("}")]
            for obj in (o for o in world if o.kind == kind):
                r = client.get(path.replace("{" + param + "}", obj.key), headers=h)
                want = 200 if caller.sees(obj) else 404
                if r.status_code != want:
                    failures.append(
                        f"{caller.name} GET {path} {obj}: {r.status_code}, expected {want}"
                    )
                elif want == 404:
                    assert set(r.json()) == {"error"}  # the error model, nothing of the object
    assert not failures, "\n".join(failures)


def test_unit_filters_do_not_widen_the_scope(
    client: TestClient, db: Database, world: list[Obj]
) -> None:
    h = bearer(token_for(db, "a-only", "analyst", [A]))
    for path in ("/api/incidents", "/api/alerts"):
        r = client.get(path, headers=h, params={"unit": B})
        assert r.status_code == 200 and r.json()["count"] == 0 and r.json()["data"] == []
    r = client.get("/api/incidents", headers=h, params={"q": "r-3"})
    assert r.json()["data"] == []
    r = client.get("/api/alerts", headers=h, params={"rule_id": "r-3"})
    assert r.json()["data"] == []


def test_a_unit_sees_the_units_below_it(client: TestClient, db: Database, world: list[Obj]) -> None:
    """A user of a parent unit sees its children's objects; re-parenting the child moves
    them out of that scope (the app re-reads the unit tree; here at once)."""
    client.app.state.unit_tree.ttl = 0  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    with db.session() as s:
        s.add(UnitRow(code="province", name="UBND tỉnh", kind="province", updated_at=now))
        s.flush()
        s.get_one(UnitRow, A).parent = "province"
    h = bearer(token_for(db, "province-analyst", "analyst", ["province"]))

    def incidents() -> list[str]:
        r = client.get("/api/incidents", headers=h, params={"limit": 500})
        assert r.status_code == 200, r.text
        return sorted(_data_ids(r.json()))

    of_a = sorted(o.key for o in world if o.kind == "incident" and o.unit == A)
    assert of_a and incidents() == of_a
    systems = client.get("/api/inventory/systems", headers=h).json()
    assert sorted(_codes(systems)) == ["SYS-A", "SYS-A-MAT"]
    with db.session() as s:
        s.get_one(UnitRow, A).parent = None
    assert incidents() == []
