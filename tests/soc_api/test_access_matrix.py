"""Role × route: every route of the application, every role, allowed or 403 as specified.

`EXPECTED` is the specification as data (soc_api/access_policy.py explains it): for each
(method, path) the roles allowed, or PUBLIC (no token needed). Every route the application
serves must be in it: a new route fails `test_every_route_is_declared` until it is declared.
Declared routes the application does not serve (yet) are ignored, so routers of other parts
can be declared ahead of their registration.

`PENDING` lists roles the specification denies but a route still lets through (routes whose
owner has not applied `require_roles` yet). It is strict: once the route denies them, the
test asks for the entry to be removed.

"Allowed" means the request got past authentication and authorisation (any status but 401
and 403: 404 for a missing object is allowed); "denied" means 403.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from detections.catalog import RuleCatalog, RulePolicy
from soc_api import create_app
from soc_api.access_login import set_password
from soc_api.auth import create_user, issue_token
from soc_api.models import User
from socmon.db import Database
from socmon.store import Store
from tests.detections.test_catalog import LOGIN_FAILURE, write_fixture_rules
from tests.soc_api.access_fixtures import ROLES

pytestmark = pytest.mark.integration

PUBLIC = "public"
EVERY = frozenset(ROLES)
SOC_READ = frozenset({"admin", "analyst", "provider-analyst", "manager", "drill"})
SOC_WORK = frozenset({"admin", "analyst", "provider-analyst"})
PROVINCIAL = frozenset({"admin", "analyst"})
ADMIN = frozenset({"admin"})
OPERATIONS = frozenset({"admin", "sysadmin"})
TASK_OWNERS = frozenset({"admin", "analyst", "provider-analyst", "sysadmin", "manager"})
COMPLIANCE_READ = frozenset({"admin", "manager", "analyst", "provider-analyst", "sysadmin"})
COMPLIANCE_EDIT = frozenset({"admin", "manager"})

EXPECTED: dict[tuple[str, str], frozenset[str] | str] = {
    # schema and docs
    ("GET", "/api/openapi.json"): PUBLIC,
    ("HEAD", "/api/openapi.json"): PUBLIC,
    ("GET", "/api/docs"): PUBLIC,
    ("HEAD", "/api/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("HEAD", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/api/health"): PUBLIC,
    ("GET", "/metrics"): OPERATIONS,
    # access
    ("POST", "/api/login"): PUBLIC,
    ("POST", "/api/logout"): EVERY,
    ("GET", "/api/me"): EVERY,
    ("GET", "/api/roles"): EVERY,
    ("GET", "/api/users"): ADMIN,
    ("POST", "/api/users"): ADMIN,
    ("GET", "/api/users/{user_id}"): ADMIN,
    ("PATCH", "/api/users/{user_id}"): ADMIN,
    ("DELETE", "/api/users/{user_id}"): ADMIN,
    ("GET", "/api/users/{user_id}/tokens"): ADMIN,
    ("POST", "/api/users/{user_id}/tokens"): ADMIN,
    ("DELETE", "/api/users/{user_id}/tokens/{token_id}"): ADMIN,
    # detection
    ("GET", "/api/sources"): EVERY,
    ("GET", "/api/rules"): EVERY,
    ("GET", "/api/rules/{key:path}"): EVERY,
    ("PATCH", "/api/rules/{key:path}"): PROVINCIAL,
    ("GET", "/api/alerts"): SOC_READ,
    ("GET", "/api/alerts/{alert_id}"): SOC_READ,
    ("GET", "/api/alerts/export"): SOC_READ,
    # incidents
    ("GET", "/api/incidents"): SOC_READ,
    ("GET", "/api/incidents/{incident_id}"): SOC_READ,
    ("GET", "/api/incidents/export"): SOC_READ,
    ("GET", "/api/incidents/{incident_id}/observables"): SOC_READ,
    ("PATCH", "/api/incidents/{incident_id}"): SOC_WORK,
    ("POST", "/api/incidents/{incident_id}/comments"): SOC_WORK,
    ("POST", "/api/incidents/{incident_id}/merge"): SOC_WORK,
    ("POST", "/api/incidents/{incident_id}/split"): SOC_WORK,
    ("GET", "/api/suppressions"): SOC_READ,
    ("POST", "/api/suppressions"): PROVINCIAL,
    ("GET", "/api/suppressions/{suppression_id}"): SOC_READ,
    ("PATCH", "/api/suppressions/{suppression_id}"): PROVINCIAL,
    ("DELETE", "/api/suppressions/{suppression_id}"): PROVINCIAL,
    # playbooks
    ("GET", "/api/playbooks"): EVERY,
    ("GET", "/api/playbooks/{playbook_id}"): EVERY,
    ("GET", "/api/playbook-runs"): EVERY,
    ("POST", "/api/playbook-runs"): SOC_WORK,
    ("GET", "/api/playbook-runs/{run_id}"): EVERY,
    ("PATCH", "/api/playbook-runs/{run_id}/tasks/{task_id}"): TASK_OWNERS,
    ("POST", "/api/playbook-runs/{run_id}/tasks/{task_id}/execute"): TASK_OWNERS,
    ("POST", "/api/playbook-runs/{run_id}/tasks/{task_id}/report"): TASK_OWNERS,
    # compliance
    ("GET", "/api/compliance/summary"): COMPLIANCE_READ,
    ("GET", "/api/compliance/report"): COMPLIANCE_READ,
    ("GET", "/api/compliance/systems"): COMPLIANCE_READ,
    ("GET", "/api/compliance/systems/{code}"): COMPLIANCE_READ,
    ("GET", "/api/compliance/controls"): COMPLIANCE_READ,
    ("GET", "/api/compliance/attestations"): COMPLIANCE_READ,
    ("POST", "/api/compliance/attestations"): COMPLIANCE_EDIT,
    ("DELETE", "/api/compliance/attestations/{attestation_id}"): COMPLIANCE_EDIT,
    ("GET", "/api/compliance/records"): COMPLIANCE_READ,
    ("POST", "/api/compliance/records"): COMPLIANCE_EDIT,
    ("POST", "/api/compliance/evaluate"): COMPLIANCE_EDIT,
}

INV_READ = frozenset({"admin", "analyst", "provider-analyst", "sysadmin", "manager"})
for _kind, _key in {
    "units": "code",
    "sites": "code",
    "links": "code",
    "zones": "name",
    "assets": "name",
    "systems": "code",
}.items():
    _change = OPERATIONS if _kind == "assets" else ADMIN  # sysadmins: their units' assets
    EXPECTED[("GET", f"/api/inventory/{_kind}")] = INV_READ
    EXPECTED[("GET", f"/api/inventory/{_kind}/{{{_key}}}")] = INV_READ
    EXPECTED[("POST", f"/api/inventory/{_kind}")] = _change
    EXPECTED[("PATCH", f"/api/inventory/{_kind}/{{{_key}}}")] = _change
    EXPECTED[("DELETE", f"/api/inventory/{_kind}/{{{_key}}}")] = _change
EXPECTED[("POST", "/api/inventory/import")] = ADMIN
EXPECTED[("GET", "/api/inventory/export")] = INV_READ

# Cookie-authenticated console pages: roles and tenancy are tested in
# tests/soc_api/console/test_console.py (a bearer token does not open them).
CONSOLE: dict[tuple[str, str], str] = {
    ("GET", "/"): "a redirect to the console",
    ("GET", "/console/login"): "the login form",
    ("POST", "/console/login"): "login: same checks and limiter as /api/login",
    ("POST", "/console/logout"): "revokes the session cookie's token",
    ("GET", "/console/incidents"): "incidents page",
    ("GET", "/console/incidents/{incident_id}"): "incident page",
    ("GET", "/console/sources"): "sources page",
    ("GET", "/console/systems"): "systems page",
    ("GET", "/console/compliance"): "compliance page",
}

# Routes that do not apply the table yet: (method, path) -> roles still let through.
PENDING: dict[tuple[str, str], frozenset[str]] = {}

# Valid bodies, so that a check made after validation still answers 403 rather than 422.
_names = itertools.count()
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/users"): lambda: {
        "name": f"new-{next(_names)}",
        "role": "analyst",
        "units": ["so-yte"],
    },
    ("PATCH", "/api/users/{user_id}"): lambda: {"units": ["so-yte", "so-tttt"]},
    ("PATCH", "/api/rules/{key:path}"): lambda: {"enabled": True},
    ("PATCH", "/api/incidents/{incident_id}"): lambda: {"severity": "high"},
    ("POST", "/api/incidents/{incident_id}/comments"): lambda: {"body": "seen"},
    ("POST", "/api/incidents/{incident_id}/merge"): lambda: {"incident_ids": [999998]},
    ("POST", "/api/incidents/{incident_id}/split"): lambda: {"alert_ids": ["nope"]},
    ("POST", "/api/suppressions"): lambda: {
        "rule_id": "r-x",
        "match": {"source.ip": "192.0.2.1"},
        "reason": "matrix test",
        "expires_at": "2099-01-01T00:00:00Z",
        "unit": "so-yte",
    },
    ("PATCH", "/api/suppressions/{suppression_id}"): lambda: {"reason": "changed"},
    ("POST", "/api/login"): lambda: {"username": "console", "password": "console password 1"},
    ("POST", "/api/compliance/attestations"): lambda: {
        "control": "TCVN11930.MGMT.POLICY",
        "system": "NO-SUCH-SYSTEM",
        "document_ref": "matrix test",
        "attester": "matrix",
        "attested_on": "2026-01-01",
    },
    ("POST", "/api/compliance/records"): lambda: {
        "kind": "drill",
        "unit": "so-yte",
        "occurred_at": "2026-01-01T00:00:00Z",
        "summary": "matrix test",
    },
}


def served(app: Any) -> set[tuple[str, str]]:
    out = set()
    for rc in iter_route_contexts(app.routes):
        for method in getattr(rc, "methods", None) or ():
            out.add((method, str(rc.path)))
    return out


@pytest.fixture
def app_client(db: Database, store: Store, tmp_path: Path) -> Iterator[TestClient]:
    catalog = RuleCatalog.load([write_fixture_rules(tmp_path / "rules")], RulePolicy())
    with TestClient(create_app(db, store, embedded=True, catalog=catalog)) as c:
        yield c


def test_every_route_is_declared(app_client: TestClient) -> None:
    missing = sorted(served(app_client.app) - set(EXPECTED) - set(CONSOLE))
    assert not set(CONSOLE) & set(EXPECTED)
    assert not missing, f"routes missing from EXPECTED (declare who may call them): {missing}"
    assert set(PENDING) <= set(EXPECTED)


def test_every_role_on_every_route(app_client: TestClient, db: Database) -> None:
    with db.session() as s:
        victim = create_user(s, "victim", "analyst", ["so-yte"], actor="test")
        console = create_user(s, "console", "analyst", ["so-yte"], actor="test")
        set_password(s, console, "console password 1", actor="test")
        users = {r: create_user(s, f"as-{r}", r, ["*"], actor="test") for r in ROLES}
        victim_id = victim.id
    params = {
        "user_id": str(victim_id),
        "token_id": "999999",
        "incident_id": "999999",
        "suppression_id": "999999",
        "alert_id": "no-such-alert",
        "key:path": LOGIN_FAILURE,
        "playbook_id": "no-such-playbook",
        "run_id": "999999",
        "task_id": "no-such-task",
        "code": "NO-SUCH-SYSTEM",
        "name": "no-such",
        "attestation_id": "999999",
    }

    def call(method: str, path: str, user: User | None) -> int:
        url = path
        for name, value in params.items():
            url = url.replace("{" + name + "}", value)
        assert "{" not in url, f"no sample value for a parameter of {path}: add it to params"
        headers = {}
        if user is not None:  # a token per request: /api/logout revokes the one it gets
            with db.session() as s:
                headers["Authorization"] = f"Bearer {issue_token(s, user, actor='test')}"
        body = BODIES.get((method, path))
        r = app_client.request(
            method, url, headers=headers, json=body() if body is not None else None
        )
        return r.status_code

    wrong, stale = [], []
    for method, path in sorted(served(app_client.app)):
        if (method, path) in CONSOLE:
            continue
        expected = EXPECTED[(method, path)]
        if expected == PUBLIC:
            status = call(method, path, None)
            if status in (401, 403):
                wrong.append(f"{method} {path} without a token: {status}, expected public")
            continue
        assert isinstance(expected, frozenset)
        status = call(method, path, None)
        if status != 401:
            wrong.append(f"{method} {path} without a token: {status}, expected 401")
        pending = PENDING.get((method, path), frozenset())
        for role in ROLES:
            status = call(method, path, users[role])
            allowed = status not in (401, 403)
            if status == 401:
                wrong.append(f"{method} {path} as {role}: 401 with a valid token")
            elif role in expected and not allowed:
                wrong.append(f"{method} {path} as {role}: {status}, expected allowed")
            elif role not in expected and allowed and role not in pending:
                wrong.append(f"{method} {path} as {role}: {status}, expected 403")
            elif role in pending and not allowed:
                stale.append(f"{method} {path} as {role}: now denied, remove it from PENDING")
    assert not wrong, "\n".join(wrong)
    assert not stale, "\n".join(stale)
