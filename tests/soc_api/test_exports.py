"""Exports of incidents and alerts: scoped exactly like the lists, CSV and JSON lines that
parse, capped with `X-Socmon-Truncated`, recorded in the audit log."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from soc_api import IncidentService, create_app
from soc_api.audit import verify
from soc_api.models import AuditRecord, Incident
from soc_api.routes.exports import ROWS_HEADER, TRUNCATED_HEADER, csv_cell
from socmon.db import Database
from socmon.store import Store
from tests.soc_api.access_fixtures import alert_doc, bearer, put_alerts, token_for

pytestmark = pytest.mark.integration

A, B = "so-tttt", "so-yte"
# (n, unit, side carrying the state-secret flag): one alert and one incident each
SPECS = [(1, A, None), (2, A, "destination"), (3, B, None), (4, B, "observer"), (5, None, None)]
ROUTES = {"incident": "/api/incidents/export", "alert": "/api/alerts/export"}


@pytest.fixture
def client(db: Database, store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(db, store, embedded=True)) as c:
        yield c


@pytest.fixture
def world(db: Database, store: Store) -> dict[str, dict[str, tuple[str | None, bool]]]:
    """kind -> key -> (unit, state-secret) of the seeded alerts and incidents."""
    docs = [
        alert_doc(n, unit=unit, secret_side=side, rule_id=f"r-{n}", ts=f"2026-11-23T10:0{n}:00Z")
        for n, unit, side in SPECS
    ]
    put_alerts(store, docs)
    out: dict[str, dict[str, tuple[str | None, bool]]] = {"alert": {}, "incident": {}}
    for (doc_id, _), (_, unit, side) in zip(docs, SPECS, strict=True):
        out["alert"][doc_id] = (unit, side is not None)
    svc = IncidentService(window=timedelta(hours=1))
    with db.session() as s:
        for doc_id, doc in docs:
            svc.ingest(s, doc_id, doc)
    with db.session() as s:
        for inc in s.scalars(select(Incident)):
            out["incident"][str(inc.id)] = (inc.unit, inc.state_secret)
    assert sum(secret for _, secret in out["incident"].values()) == 2  # precondition
    return out


def rows_of(text: str, fmt: str) -> list[dict[str, Any]]:
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    return [json.loads(line) for line in text.splitlines()]


def export(client: TestClient, kind: str, token: str, fmt: str, **params: Any) -> Any:
    r = client.get(ROUTES[kind], headers=bearer(token), params={"format": fmt, **params})
    assert r.status_code == 200, r.text
    return r


Sees = Callable[[str | None, bool], bool]
CALLERS: list[tuple[str, str, list[str], Sees]] = [  # name, role, units, sees(unit, secret)
    ("a-analyst", "analyst", [A], lambda u, s: u == A),
    ("b-manager", "manager", [B], lambda u, s: u == B),
    ("provider", "provider-analyst", ["*"], lambda u, s: not s),
    ("provider-a", "provider-analyst", [A], lambda u, s: u == A and not s),
    ("root", "admin", [], lambda u, s: True),
]


@pytest.mark.parametrize("kind", ["incident", "alert"])
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_exports_hold_exactly_the_callers_rows(
    client: TestClient, db: Database, world: Any, kind: str, fmt: str
) -> None:
    for name, role, units, sees in CALLERS:
        token = token_for(db, f"{name}-{kind}-{fmt}", role, units)
        r = export(client, kind, token, fmt)
        got = sorted(str(row["id"]) for row in rows_of(r.text, fmt))
        want = sorted(key for key, (unit, secret) in world[kind].items() if sees(unit, secret))
        assert got == want, (name, kind, fmt)
        assert r.headers[ROWS_HEADER] == str(len(want))
        assert r.headers[TRUNCATED_HEADER] == "false"
        # a unit filter never widens the scope
        r = export(client, kind, token, fmt, unit=B)
        got_b = {str(row["id"]) for row in rows_of(r.text, fmt)}
        assert got_b <= set(want)


def test_csv_parses_and_json_lines_match_the_list(
    client: TestClient, db: Database, world: Any
) -> None:
    token = token_for(db, "root", "admin", [])
    listed = client.get("/api/incidents", headers=bearer(token)).json()["data"]
    r = export(client, "incident", token, "csv")
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    reader = csv.DictReader(io.StringIO(r.text))
    rows = list(reader)
    assert reader.fieldnames is not None and "id" in reader.fieldnames
    assert [row["id"] for row in rows] == [str(i["id"]) for i in listed]  # same order
    first = rows[0]
    assert first["title"] == listed[0]["title"] and first["unit"] == (listed[0]["unit"] or "")
    assert json.loads(first["group_fields"]) == listed[0]["group_fields"]
    r = export(client, "incident", token, "json")
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in r.text.splitlines()] == listed  # same shape as list
    r = export(client, "alert", token, "json")
    alerts = client.get("/api/alerts", headers=bearer(token)).json()["data"]
    assert [json.loads(line) for line in r.text.splitlines()] == alerts


def test_filters_are_the_lists(client: TestClient, db: Database, world: Any) -> None:
    token = token_for(db, "root", "admin", [])
    r = export(client, "incident", token, "json", q="r-3")
    assert [row["rule_id"] for row in rows_of(r.text, "json")] == ["r-3"]
    r = export(client, "alert", token, "csv", rule_id="r-4")
    assert [row["rule_id"] for row in rows_of(r.text, "csv")] == ["r-4"]
    r = client.get(ROUTES["incident"], headers=bearer(token), params={"state": "nope"})
    assert r.status_code == 422
    r = client.get(ROUTES["incident"], headers=bearer(token), params={"format": "xml"})
    assert r.status_code == 422


@pytest.mark.parametrize("kind", ["incident", "alert"])
def test_over_the_limit_is_truncated_and_says_so(
    client: TestClient, db: Database, world: Any, kind: str
) -> None:
    token = token_for(db, "root", "admin", [])
    r = export(client, kind, token, "csv", limit=2)
    assert r.headers[TRUNCATED_HEADER] == "true"
    assert r.headers[ROWS_HEADER] == "2"
    assert len(rows_of(r.text, "csv")) == 2
    r = export(client, kind, token, "json", limit=len(world[kind]))
    assert r.headers[TRUNCATED_HEADER] == "false"
    assert len(rows_of(r.text, "json")) == len(world[kind])


def test_every_export_is_audited(client: TestClient, db: Database, world: Any) -> None:
    token = token_for(db, "a-auditee", "analyst", [A])
    export(client, "incident", token, "csv", severity="high", sort="id")
    export(client, "alert", token, "json", level=["high", "critical"])
    export(client, "alert", token, "csv", unit=B)
    with db.session() as s:
        recs = list(
            s.scalars(
                select(AuditRecord)
                .where(AuditRecord.object_type == "export")
                .order_by(AuditRecord.id)
            )
        )
        assert [(r.actor, r.action) for r in recs] == [
            ("a-auditee", "incidents.export"),
            ("a-auditee", "alerts.export"),
            ("a-auditee", "alerts.export"),
        ]
        assert recs[0].detail == {
            "format": "csv",
            "filters": {"format": "csv", "severity": "high", "sort": "id"},
            "rows": 2,
            "truncated": False,
        }
        assert recs[1].detail["filters"]["level"] == ["high", "critical"]
        assert recs[1].detail["rows"] == 2
        assert recs[2].detail["rows"] == 0
        assert verify(s)[0]


def test_export_is_not_read_as_an_id(client: TestClient, db: Database, world: Any) -> None:
    token = token_for(db, "root", "admin", [])
    for path in ROUTES.values():
        r = client.get(path, headers=bearer(token))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    first = next(iter(world["incident"]))
    assert client.get(f"/api/incidents/{first}", headers=bearer(token)).json()["id"] == int(first)


def test_csv_cells_do_not_become_formulas() -> None:
    assert csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert csv_cell("portal.gov.vn") == "portal.gov.vn"
    assert csv_cell(-3) == "-3" and csv_cell(None) == "" and csv_cell(True) == "true"
    assert csv_cell({"a": [1]}) == '{"a":[1]}'
