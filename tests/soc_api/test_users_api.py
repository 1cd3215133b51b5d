"""/api/users, tokens, roles and console login over a real SQLite database and audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from soc_api import audit, create_app
from soc_api.access_login import DbLoginLimiter, Limiter, LoginLimiter
from soc_api.auth import SESSION_TTL, authenticate
from soc_api.models import ApiToken, AuditRecord
from socmon.db import Database
from tests.soc_api.access_fixtures import bearer, token_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(db: Database, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(db, None, login_limiter=DbLoginLimiter(db, 5, 300, clock=clock))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def admin(db: Database) -> dict[str, str]:
    return bearer(token_for(db, "root-admin", "admin", ["*"]))


def actions(db: Database) -> list[str]:
    with db.session() as s:
        return [r.action for r in s.scalars(select(AuditRecord).order_by(AuditRecord.id))]


def test_roles_lists_the_six_roles_with_labels(client: TestClient, db: Database) -> None:
    h = bearer(token_for(db, "m", "manager", ["so-yte"]))
    body = client.get("/api/roles", headers=h).json()
    assert [r["code"] for r in body["data"]] == [
        "admin",
        "analyst",
        "provider-analyst",
        "sysadmin",
        "manager",
        "drill",
    ]
    assert body["count"] == 6
    assert all(r["label"]["vi"] and r["label"]["en"] for r in body["data"])
    me = client.get("/api/me", headers=h).json()
    assert me["name"] == "m" and me["units"] == ["so-yte"] and me["has_password"] is False


def test_user_lifecycle_is_audited_and_the_chain_verifies(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    r = client.post(
        "/api/users",
        headers=admin,
        json={"name": "lan.nt", "role": "analyst", "units": ["so-yte", "so-tttt", "so-yte"]},
    )
    assert r.status_code == 201, r.text
    user = r.json()
    assert (
        user["units"] == ["so-tttt", "so-yte"]
        and user["role_label"]["en"] == "Analyst (provincial)"
    )
    uid = user["id"]
    assert (
        client.post(
            "/api/users", headers=admin, json={"name": "lan.nt", "role": "analyst", "units": []}
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/users", headers=admin, json={"name": "x", "role": "root", "units": []}
        ).status_code
        == 422
    )

    # A token: shown once, listed without its secret, works, then is revoked.
    r = client.post(f"/api/users/{uid}/tokens", headers=admin)
    assert r.status_code == 201
    created = r.json()
    token = created["token"]
    assert token.startswith("smk_") and created["kind"] == "api" and created["expires_at"] is None
    listed = client.get(f"/api/users/{uid}/tokens", headers=admin).json()
    assert listed["count"] == 1 and "token" not in listed["data"][0]
    assert listed["data"][0]["prefix"] == token[:10]
    with db.session() as s:
        assert token not in {t.token_hash for t in s.scalars(select(ApiToken))}
    assert client.get("/api/me", headers=bearer(token)).json()["name"] == "lan.nt"

    r = client.patch(
        f"/api/users/{uid}", headers=admin, json={"role": "manager", "units": ["so-yte"]}
    )
    assert (
        r.status_code == 200 and r.json()["role"] == "manager" and r.json()["units"] == ["so-yte"]
    )
    assert client.get(f"/api/users/{uid}", headers=admin).json()["role"] == "manager"

    r = client.delete(f"/api/users/{uid}/tokens/{created['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert client.get("/api/me", headers=bearer(token)).status_code == 401

    second = client.post(f"/api/users/{uid}/tokens", headers=admin).json()["token"]
    r = client.delete(f"/api/users/{uid}", headers=admin)
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert client.get("/api/me", headers=bearer(second)).status_code == 401
    assert client.post(f"/api/users/{uid}/tokens", headers=admin).status_code == 409

    got = actions(db)
    assert got == [
        "user.create",  # the admin fixture
        "token.create",
        "user.create",
        "token.create",
        "user.update",
        "token.revoke",
        "token.create",
        "user.disable",
    ]
    with db.session() as s:
        ok, n, _ = audit.verify(s)
        assert ok and n == len(got)


def test_users_list_filters_and_pages(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    for n, (role, units) in enumerate(
        [
            ("analyst", ["so-yte"]),
            ("analyst", ["so-tttt"]),
            ("sysadmin", ["so-yte"]),
            ("manager", ["*"]),
        ]
    ):
        token_for(db, f"user{n}", role, units)
    every = client.get("/api/users", headers=admin).json()
    assert every["count"] == 5
    assert [u["name"] for u in every["data"]] == sorted(u["name"] for u in every["data"])
    analysts = client.get("/api/users", headers=admin, params={"role": "analyst"}).json()
    assert {u["name"] for u in analysts["data"]} == {"user0", "user1"}
    yte = client.get("/api/users", headers=admin, params={"unit": "so-yte"}).json()
    assert {u["name"] for u in yte["data"]} == {"user0", "user2", "user3", "root-admin"}
    page = client.get(
        "/api/users", headers=admin, params={"limit": 2, "offset": 2, "sort": "-id"}
    ).json()
    assert page["count"] == 5 and len(page["data"]) == 2
    assert [u["name"] for u in page["data"]] == ["user1", "user0"]


def test_an_admin_cannot_lock_themselves_out(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    me = client.get("/api/me", headers=admin).json()
    assert client.delete(f"/api/users/{me['id']}", headers=admin).status_code == 409
    r = client.patch(f"/api/users/{me['id']}", headers=admin, json={"role": "analyst"})
    assert r.status_code == 409
    assert client.patch(f"/api/users/{me['id']}", headers=admin, json={}).status_code == 422


def test_only_admins_manage_users(client: TestClient, db: Database) -> None:
    for role in ("analyst", "provider-analyst", "sysadmin", "manager", "drill"):
        h = bearer(token_for(db, f"u-{role}", role, ["*"]))
        assert client.get("/api/users", headers=h).status_code == 403
        r = client.post(
            "/api/users", headers=h, json={"name": "evil", "role": "admin", "units": ["*"]}
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert client.get("/api/users").status_code == 401


def test_login_with_a_password_gives_a_short_lived_session(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    r = client.post(
        "/api/users",
        headers=admin,
        json={
            "name": "hoa.pt",
            "role": "analyst",
            "units": ["so-yte"],
            "password": "correct horse battery",
        },
    )
    assert r.status_code == 201 and r.json()["has_password"] is True
    with db.session() as s:
        stored = s.execute(select(ApiToken.id)).all()  # no token was issued with the user
        hashes = s.execute(
            text("SELECT password_hash FROM users WHERE name = 'hoa.pt'")
        ).scalar_one()
    assert hashes.startswith("$argon2id$") and "correct horse" not in hashes
    assert len(stored) == 1  # the admin fixture's

    r = client.post("/api/login", json={"username": "hoa.pt", "password": "correct horse battery"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"].startswith("sms_") and body["user"]["name"] == "hoa.pt"
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(0) < expires - datetime.now(UTC) <= SESSION_TTL
    h = bearer(body["token"])
    assert client.get("/api/me", headers=h).json()["name"] == "hoa.pt"
    assert "session.create" in actions(db)

    # Expired sessions are refused: move the issue time back past the TTL.
    with db.session() as s:
        row = s.scalars(select(ApiToken).where(ApiToken.prefix.startswith("sms_"))).one()
        row.created_at = datetime.now(UTC) - SESSION_TTL - timedelta(seconds=1)
    with db.session() as s:
        assert authenticate(s, body["token"]) is None
    assert client.get("/api/me", headers=h).status_code == 401

    # Logout revokes the token in use.
    fresh = client.post(
        "/api/login", json={"username": "hoa.pt", "password": "correct horse battery"}
    )
    h = bearer(fresh.json()["token"])
    assert client.post("/api/logout", headers=h).json()["revoked"] is True
    assert client.get("/api/me", headers=h).status_code == 401


def test_no_password_no_login_and_weak_passwords_are_refused(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    token_for(db, "nopass", "analyst", ["so-yte"])
    r = client.post("/api/login", json={"username": "nopass", "password": ""})
    assert r.status_code == 422
    r = client.post("/api/login", json={"username": "nopass", "password": "anything-at-all"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    r = client.post("/api/login", json={"username": "nobody", "password": "anything-at-all"})
    assert r.status_code == 401
    uid = next(
        u["id"]
        for u in client.get("/api/users", headers=admin).json()["data"]
        if u["name"] == "nopass"
    )
    assert (
        client.patch(f"/api/users/{uid}", headers=admin, json={"password": "short"}).status_code
        == 422
    )
    r = client.patch(f"/api/users/{uid}", headers=admin, json={"password": "nopass"})
    assert r.status_code == 422
    r = client.patch(f"/api/users/{uid}", headers=admin, json={"password": "a long enough secret"})
    assert r.status_code == 200 and r.json()["has_password"] is True
    assert "user.password_set" in actions(db)
    r = client.patch(f"/api/users/{uid}", headers=admin, json={"password": None})
    assert r.json()["has_password"] is False
    r = client.post("/api/login", json={"username": "nopass", "password": "a long enough secret"})
    assert r.status_code == 401


def test_login_is_rate_limited_per_user_name_and_per_address(
    client: TestClient, db: Database, admin: dict[str, str], clock: FakeClock
) -> None:
    for name in ("victim", "other"):
        client.post(
            "/api/users",
            headers=admin,
            json={
                "name": name,
                "role": "analyst",
                "units": ["so-yte"],
                "password": "the right password",
            },
        )
    for _ in range(5):
        assert (
            client.post(
                "/api/login", json={"username": "victim", "password": "guess guess"}
            ).status_code
            == 401
        )
    r = client.post("/api/login", json={"username": "victim", "password": "the right password"})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert 0 < int(r.headers["Retry-After"]) <= 300
    # The same client address is blocked for every user name too.
    assert (
        client.post(
            "/api/login", json={"username": "other", "password": "the right password"}
        ).status_code
        == 429
    )
    clock.now += 301
    r = client.post("/api/login", json={"username": "victim", "password": "the right password"})
    assert r.status_code == 200


@pytest.mark.parametrize("kind", ["memory", "database"])
def test_per_user_limit_holds_across_addresses(kind: str, db: Database) -> None:
    clock = FakeClock()
    lim: Limiter = (
        LoginLimiter(5, 300, clock=clock)
        if kind == "memory"
        else DbLoginLimiter(db, 5, 300, clock=clock)
    )
    for n in range(5):
        lim.failure("user:victim", f"ip:10.0.0.{n}")
    assert lim.retry_after("user:victim", "ip:10.0.0.99") == 300
    assert lim.retry_after("user:other", "ip:10.0.0.99") == 0
    clock.now += 150
    assert lim.retry_after("user:victim", "ip:10.0.0.99") == 150
    lim.success("user:victim")
    assert lim.retry_after("user:victim", "ip:10.0.0.99") == 0


def test_api_processes_share_the_failures(db: Database) -> None:
    """Two API processes (two limiters over one database) count the same failures: five
    guesses spread over both block the name on both."""
    clock = FakeClock()
    one, two = (DbLoginLimiter(db, 5, 300, clock=clock) for _ in range(2))
    for n in range(5):
        (one if n % 2 else two).failure("user:victim", f"ip:10.0.1.{n}")
    assert one.retry_after("user:victim") == 300 == two.retry_after("user:victim")
    clock.now += 301
    assert one.retry_after("user:victim") == 0
    one.failure("user:victim")  # rows older than the window are pruned at each failure
    with db.session() as s:
        assert s.scalar(text("SELECT count(*) FROM login_failures")) == 1
