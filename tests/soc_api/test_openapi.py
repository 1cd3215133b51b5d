"""Schemathesis against the application's OpenAPI (ASGI, in process): no 5xx, every status
documented, every body matching its schema, for generated requests to every operation.

An admin token (a fresh one per request: /api/logout and token revocation are among the
operations) over a real SQLite database and the real event store, seeded with alerts and
incidents so that detail routes find something. Examples per operation are bounded
(`MAX_EXAMPLES`) to keep the run well under a minute.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis import checks as st_checks
from schemathesis.core.result import Ok

from detections.catalog import RuleCatalog, RulePolicy
from soc_api import IncidentService, create_app
from soc_api.auth import create_user, issue_token
from soc_api.models import User
from socmon.config import load_settings
from socmon.db import Database
from socmon.embedded import EmbeddedStore
from socmon.store import Store
from tests.conftest import PgDatabases
from tests.detections.test_catalog import write_fixture_rules
from tests.soc_api.access_fixtures import alert_doc, put_alerts

pytestmark = pytest.mark.integration

MAX_EXAMPLES = int(os.environ.get("OPENAPI_EXAMPLES", "5"))
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, osmem: EmbeddedStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """One application for every operation (a SQLite or PostgreSQL database, a store
    namespace)."""
    tmp = tmp_path_factory.mktemp("openapi")
    pg_name = None
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp / 'state.db'}")
    else:
        pg: PgDatabases = request.getfixturevalue("pg_databases")
        pg_name = pg.create()
        db = Database(pg.url_of(pg_name))
    db.migrate()
    namespace = f"openapi{request.param[:2]}"
    store = Store.connect(load_settings(data_dir=tmp / "data", namespace=namespace), osmem.url)
    store.setup()
    docs = [alert_doc(n, unit="so-yte" if n % 2 else "so-tttt", rule_id=f"r-{n}") for n in range(4)]
    put_alerts(store, docs)
    svc = IncidentService(window=timedelta(hours=1))
    with db.session() as s:
        for doc_id, doc in docs:
            svc.ingest(s, doc_id, doc)
        admin = create_user(s, "schema-admin", "admin", ["*"], actor="test")
        admin_id = admin.id
    catalog = RuleCatalog.load([write_fixture_rules(tmp / "rules")], RulePolicy())
    app = create_app(db, store, embedded=True, catalog=catalog)
    yield {"app": app, "db": db, "admin_id": admin_id}
    store.close()
    db.dispose()
    if pg_name is not None:
        pg.drop(pg_name)


def operation_labels() -> list[str]:
    """Every operation, read from the schema of an application built only for that."""
    app = create_app(Database("sqlite://"), None)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    labels = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI document is invalid: {result}"
        labels.append(result.ok().label)
    return sorted(labels)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", operation_labels())
def test_api_conforms_to_its_schema(label: str, mode: GenerationMode, api: dict[str, Any]) -> None:
    db: Database = api["db"]
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", api["app"])
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    selected = [getattr(st_checks, name) for name in CHECKS]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: Any) -> None:
        with db.session() as s:
            admin = s.get(User, api["admin_id"])
            assert admin is not None
            token = issue_token(s, admin, actor="test")
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=selected)

    try:
        check()
    except Unsatisfiable:
        pytest.skip(f"{label}: no parameter or body to make invalid")
