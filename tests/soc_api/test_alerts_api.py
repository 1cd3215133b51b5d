"""GET /api/alerts over the real event store (osmem-server): filters, sorting, pages, scope."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from soc_api import create_app
from socmon.db import Database
from socmon.store import Store
from tests.soc_api.access_fixtures import alert_doc, bearer, put_alerts, token_for

pytestmark = pytest.mark.integration


@pytest.fixture
def client(db: Database, store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(db, store, embedded=True)) as c:
        yield c


@pytest.fixture
def seeded(store: Store) -> None:
    docs = [
        alert_doc(
            n,
            unit="so-yte" if n % 2 else "so-tttt",
            ts=f"2026-11-23T10:{n:02d}:00Z",
            level=("low", "medium", "high", "critical")[n % 4],
            rule_id="r-brute" if n < 6 else "r-scan",
            title="SSH brute force on portal" if n < 6 else "Port scan of the DMZ",
        )
        for n in range(10)
    ]
    docs.append(alert_doc(10, unit=None, ts="2026-11-23T11:00:00Z", title="Unowned"))
    put_alerts(store, docs)


def ids(body: dict) -> list[str]:  # type: ignore[type-arg]
    return [a["id"] for a in body["data"]]


def test_search_filters_sorts_and_pages(client: TestClient, db: Database, seeded: None) -> None:
    h = bearer(token_for(db, "root", "admin", ["*"]))
    every = client.get("/api/alerts", headers=h).json()
    assert every["count"] == 11
    assert ids(every)[:3] == ["al-10", "al-9", "al-8"]  # newest first
    first = every["data"][1]
    assert first["rule_id"] == "r-scan" and first["level"] == "medium"
    assert first["level_label"] == {"vi": "Trung bình", "en": "Medium"}
    assert first["unit"] == "so-yte" and first["source_ip"] == "203.0.113.9"
    assert first["timestamp"].startswith("2026-11-23T10:09:00")

    r = client.get("/api/alerts", headers=h, params={"rule_id": "r-scan"}).json()
    assert sorted(ids(r)) == ["al-6", "al-7", "al-8", "al-9"]
    r = client.get(
        "/api/alerts", headers=h, params=[("level", "critical"), ("level", "low")]
    ).json()
    assert sorted(ids(r)) == ["al-0", "al-3", "al-4", "al-7", "al-8"]  # al-3, al-7 critical
    r = client.get(
        "/api/alerts",
        headers=h,
        params={
            "since": "2026-11-23T10:02:00Z",
            "until": "2026-11-23T10:05:00Z",
            "sort": "timestamp",
        },
    ).json()
    assert ids(r) == ["al-2", "al-3", "al-4"]
    r = client.get("/api/alerts", headers=h, params={"q": "port scan"}).json()
    assert r["count"] == 4
    r = client.get("/api/alerts", headers=h, params={"q": "brute portal", "unit": "so-yte"}).json()
    assert sorted(ids(r)) == ["al-1", "al-3", "al-5"]
    r = client.get("/api/alerts", headers=h, params={"sort": "-severity", "limit": 3}).json()
    assert [a["level"] for a in r["data"]] == ["critical", "critical", "high"]

    pages = [
        client.get("/api/alerts", headers=h, params={"limit": 4, "offset": off}).json()
        for off in (0, 4, 8)
    ]
    assert all(p["count"] == 11 for p in pages)
    assert [i for p in pages for i in ids(p)] == ids(every)
    assert (
        client.get("/api/alerts", headers=h, params={"offset": 9990, "limit": 50}).status_code
        == 422
    )


def test_detail_and_scope(client: TestClient, db: Database, seeded: None) -> None:
    yte = bearer(token_for(db, "yte", "analyst", ["so-yte"]))
    mine = client.get("/api/alerts", headers=yte).json()
    assert mine["count"] == 5 and {a["unit"] for a in mine["data"]} == {"so-yte"}
    # Asking for another unit does not widen the scope.
    assert client.get("/api/alerts", headers=yte, params={"unit": "so-tttt"}).json()["count"] == 0
    detail = client.get("/api/alerts/al-1", headers=yte)
    assert detail.status_code == 200
    doc = detail.json()["document"]
    assert doc["rule"]["id"] == "r-brute" and doc["socmon"]["alert"]["event_id"] == "ev-1"
    assert client.get("/api/alerts/al-2", headers=yte).status_code == 404  # so-tttt
    assert client.get("/api/alerts/al-10", headers=yte).status_code == 404  # no unit
    assert client.get("/api/alerts/nope", headers=yte).status_code == 404
    admin = bearer(token_for(db, "root", "admin", []))  # admins see every unit
    assert client.get("/api/alerts/al-10", headers=admin).status_code == 200


def test_roles_outside_the_soc_get_403_and_no_store_is_503(
    client: TestClient, db: Database, seeded: None
) -> None:
    sysadmin = bearer(token_for(db, "ops", "sysadmin", ["*"]))
    r = client.get("/api/alerts", headers=sysadmin)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert client.get("/api/alerts").status_code == 401
    with TestClient(create_app(db, None)) as bare:
        r = bare.get("/api/alerts", headers=bearer(token_for(db, "a2", "admin", ["*"])))
        assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"
