"""The incident list and detail read paths (SQLAlchemy Core rows, orjson, no response-model
validation): the same shape as their response models, the bounded count, timestamps in Z."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from soc_api import IncidentService, create_app
from soc_api.routes import incidents as routes
from socmon.db import Database
from tests.soc_api.access_fixtures import alert_doc, bearer, token_for

pytestmark = pytest.mark.integration


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    svc = IncidentService(window=timedelta(hours=1))
    with db.session() as s:
        for n in range(1, 6):
            doc_id, doc = alert_doc(
                n, unit="so-yte", rule_id=f"r-{n}", ts=f"2026-11-23T10:0{n}:00Z"
            )
            svc.ingest(s, doc_id, doc)
    with TestClient(create_app(db, None)) as c:
        yield c


def test_list_and_detail_match_their_response_models(client: TestClient, db: Database) -> None:
    h = bearer(token_for(db, "reader", "analyst", ["so-yte"]))
    body = client.get("/api/incidents", headers=h).json()
    page = routes.IncidentsPublic.model_validate(body)  # every field, every type
    assert page.count == 5 and page.count_exact is True and len(page.data) == 5
    assert [i.rule_id for i in page.data] == ["r-5", "r-4", "r-3", "r-2", "r-1"]  # newest first
    first = body["data"][0]
    assert first["last_seen"].endswith("Z") and first["severity_label"]["en"]
    detail = client.get(f"/api/incidents/{first['id']}", headers=h).json()
    parsed = routes.IncidentDetail.model_validate(detail)
    assert parsed.observable_count == len(parsed.observables) > 0
    assert [a.alert_id for a in parsed.alerts] == ["al-5"]
    assert detail["alerts"][0]["ts"] == "2026-11-23T10:05:00Z"
    assert {k: detail[k] for k in first} == first  # the detail starts with the list's fields


def test_count_stops_at_its_bound_and_says_so(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = bearer(token_for(db, "counter", "admin", []))
    monkeypatch.setattr(routes, "COUNT_LIMIT", 1)
    body = client.get("/api/incidents", headers=h, params={"limit": 2}).json()
    assert (body["count"], body["count_exact"], len(body["data"])) == (3, False, 2)
    body = client.get("/api/incidents", headers=h, params={"limit": 2, "offset": 2}).json()
    assert (body["count"], body["count_exact"]) == (5, True)  # bound 5: all counted
    body = client.get("/api/incidents", headers=h, params={"limit": 4}).json()
    assert (body["count"], body["count_exact"]) == (5, True)
    body = client.get("/api/incidents", headers=h, params={"q": "r-1"}).json()
    assert (body["count"], body["count_exact"]) == (1, True)
