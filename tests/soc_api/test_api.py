from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from soc_api import IncidentService, create_app, create_user, issue_token
from socmon.db import Database
from socmon.store import Store


@pytest.fixture
def client(db: Database, store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(db, store, embedded=True)) as c:
        yield c


def token_for(db: Database, name: str, role: str, units: list[str]) -> str:
    with db.session() as s:
        return issue_token(s, create_user(s, name, role, units, actor="test"), actor="test")


def seed(db: Database) -> None:
    svc = IncidentService(window=timedelta(hours=1))
    with db.session() as s:
        for n, unit in enumerate(["so-tttt", "so-yte", None]):
            svc.ingest(
                s,
                f"a{n}",
                {
                    "@timestamp": "2026-11-23T10:00:00Z",
                    "rule": {"id": f"r{n}", "name": f"rule {n}"},
                    "socmon": {
                        "unit": unit,
                        "alert": {"event_id": f"e{n}", "level": "high", "tags": [], "group_by": []},
                    },
                },
            )


@pytest.mark.integration
def test_health_needs_no_auth_and_reports_both_backends(client: TestClient, db: Database) -> None:
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["store"]["status"] == "ok" and body["store"]["embedded"] is True
    assert body["database"] == {"status": "ok", "dialect": db.engine.dialect.name}


@pytest.mark.integration
def test_incidents_require_a_valid_token(client: TestClient, db: Database) -> None:
    r = client.get("/api/incidents")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"
    r = client.get("/api/incidents", headers={"Authorization": "Bearer smk_wrong"})
    assert r.status_code == 401


@pytest.mark.integration
def test_incidents_are_scoped_to_the_callers_units(client: TestClient, db: Database) -> None:
    seed(db)
    admin = token_for(db, "admin", "admin", ["*"])
    health_analyst = token_for(db, "yte", "analyst", ["so-yte"])
    all_ = client.get("/api/incidents", headers={"Authorization": f"Bearer {admin}"}).json()
    assert all_["count"] == 3
    mine = client.get(
        "/api/incidents", headers={"Authorization": f"Bearer {health_analyst}"}
    ).json()
    assert mine["count"] == 1 and [i["unit"] for i in mine["data"]] == ["so-yte"]
    other = next(i["id"] for i in all_["data"] if i["unit"] == "so-tttt")
    r = client.get(f"/api/incidents/{other}", headers={"Authorization": f"Bearer {health_analyst}"})
    assert r.status_code == 404
    own = mine["data"][0]["id"]
    detail = client.get(
        f"/api/incidents/{own}", headers={"Authorization": f"Bearer {health_analyst}"}
    ).json()
    assert detail["alerts"][0]["event_id"] == "e1"
    assert detail["status_label"] == {"vi": "Mới", "en": "New"}
    assert detail["first_seen"] == "2026-11-23T10:00:00Z"  # UTC, with its zone, on SQLite too


@pytest.mark.integration
def test_bad_query_is_a_4xx_with_message(client: TestClient, db: Database) -> None:
    admin = token_for(db, "admin", "admin", ["*"])
    r = client.get("/api/incidents?limit=0", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 422 and "limit" in r.json()["error"]["message"]
    r = client.get("/api/incidents?status=bogus", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 422 and "bogus" in r.json()["error"]["message"]


def test_tokens_are_stored_hashed(db: Database) -> None:
    from sqlalchemy import select

    from soc_api.models import ApiToken

    token = token_for(db, "x", "analyst", ["u1"])
    with db.session() as s:
        stored = s.scalars(select(ApiToken.token_hash)).all()
    assert token not in stored and len(stored[0]) == 64


def test_unknown_role_is_refused(db: Database) -> None:
    from soc_api.auth import AuthError

    with pytest.raises(AuthError, match="unknown role"), db.session() as s:
        create_user(s, "x", "root", ["*"], actor="test")


@pytest.mark.integration
def test_sources_show_health_and_silence(client: TestClient, db: Database, store: Store) -> None:
    import asyncio
    import time

    from collectors.health import SourceHealth, publish_health

    h = SourceHealth(host="col1")
    h.record("syslog+udp://192.0.2.1", "syslog_udp", nbytes=100)
    h.record("syslog+udp://192.0.2.2", "syslog_udp", nbytes=100, now=time.time() - 3600)
    stop = asyncio.Event()
    stop.set()
    asyncio.run(publish_health(store, h, stop))
    store.refresh(store.sources_target)
    admin = token_for(db, "admin", "admin", ["*"])
    auth = {"Authorization": f"Bearer {admin}"}
    body = client.get("/api/sources", headers=auth).json()
    assert body["count"] == 2
    by_name = {r["source"]: r for r in body["data"]}
    assert by_name["syslog+udp://192.0.2.1"]["silent"] is False
    assert by_name["syslog+udp://192.0.2.2"]["silent"] is True
    assert by_name["syslog+udp://192.0.2.1"]["events"] == 1
    silent = client.get("/api/sources?silent=true", headers=auth).json()
    assert [r["source"] for r in silent["data"]] == ["syslog+udp://192.0.2.2"]
    unit_user = token_for(db, "yte", "analyst", ["so-yte"])
    assert (
        client.get("/api/sources", headers={"Authorization": f"Bearer {unit_user}"}).json()["count"]
        == 0
    )
    assert client.get("/api/sources").status_code == 401


@pytest.mark.integration
def test_metrics_need_admin_or_sysadmin(client: TestClient, db: Database) -> None:
    assert client.get("/metrics").status_code == 401
    analyst = token_for(db, "a", "analyst", ["*"])
    assert client.get("/metrics", headers={"Authorization": f"Bearer {analyst}"}).status_code == 403
    sysadmin = token_for(db, "s", "sysadmin", ["*"])
    r = client.get("/metrics", headers={"Authorization": f"Bearer {sysadmin}"})
    assert r.status_code == 200 and "socmon_source_events_total" in r.text
