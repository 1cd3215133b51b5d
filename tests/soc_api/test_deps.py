"""`WriteRoute`: a write endpoint's transaction is committed before its response is
serialised (so no request holds the write lock while waiting for a worker thread)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, field_validator
from sqlalchemy import func, select

from soc_api.deps import SessionDep, WriteRoute
from soc_api.models import User
from socmon.db import Database


def _app(db: Database, seen: dict[str, int]) -> FastAPI:
    router = APIRouter(route_class=WriteRoute)

    class Out(BaseModel):
        name: str

        @field_validator("name")
        @classmethod
        def stored_yet(cls, v: str) -> str:
            # Runs while FastAPI serialises the response: what another connection sees now.
            with db.session() as other:
                seen[v] = (
                    other.scalar(select(func.count()).select_from(User).where(User.name == v)) or 0
                )
            return v

    def add(session: Any, name: str) -> dict[str, str]:
        session.add(User(name=name, role="analyst", units=["u"], created_at=datetime.now(UTC)))
        session.flush()
        return {"name": name}

    @router.post("/users/{name}", response_model=Out)
    def create(name: str, session: SessionDep) -> dict[str, str]:
        return add(session, name)

    @router.get("/users/{name}", response_model=Out)
    def read_only(name: str, session: SessionDep) -> dict[str, str]:
        return add(session, name)  # a GET is not committed early (and should not write)

    app = FastAPI()
    app.state.db = db
    app.include_router(router)
    return app


def test_write_routes_commit_before_serialising_and_reads_are_left_alone(db: Database) -> None:
    seen: dict[str, int] = {}
    client = TestClient(_app(db, seen))
    assert client.post("/users/early").status_code == 200
    assert seen["early"] == 1  # committed before the response model ran
    assert client.get("/users/late").status_code == 200
    assert seen["late"] == 0  # committed only when the request ended
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.name == "late")) == 1


# -- the token cache of `authenticate` --------------------------------------------------------


def _user_with_token(db: Database, name: str, role: str = "analyst") -> str:
    from soc_api.auth import create_user, issue_token

    with db.session() as s:
        return issue_token(s, create_user(s, name, role, ["so-yte"], actor="test"), actor="test")


def test_a_revocation_in_this_process_refuses_the_cached_token_at_once(db: Database) -> None:
    from soc_api.auth import authenticate, hash_token
    from soc_api.models import ApiToken

    token = _user_with_token(db, "cached")
    with db.session() as s:
        assert authenticate(s, token) is not None
    with db.session() as s:  # cached now: served without reading the token
        user = authenticate(s, token)
        assert user is not None and user.name == "cached" and user.units == ["so-yte"]
    with db.session() as s:
        row = s.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).one()
        row.revoked = True
    with db.session() as s:
        assert authenticate(s, token) is None


def test_role_units_and_disabled_changes_are_seen_at_once(db: Database) -> None:
    from soc_api.auth import authenticate

    token = _user_with_token(db, "moving")
    with db.session() as s:
        assert authenticate(s, token) is not None
    with db.session() as s:
        user = s.scalars(select(User).where(User.name == "moving")).one()
        user.role, user.units = "manager", ["so-tttt"]
    with db.session() as s:
        seen = authenticate(s, token)
        assert seen is not None and (seen.role, seen.units) == ("manager", ["so-tttt"])
    with db.session() as s:
        s.scalars(select(User).where(User.name == "moving")).one().disabled = True
    with db.session() as s:
        assert authenticate(s, token) is None


def test_a_change_made_elsewhere_is_seen_within_the_cache_bound(
    db: Database, monkeypatch: Any
) -> None:
    """Another process (raw SQL here: no event of this process) revokes the token: the cached
    entry serves it until AUTH_CACHE_SECONDS have passed, then it is refused."""
    from sqlalchemy import update

    from soc_api import auth
    from soc_api.models import ApiToken

    token = _user_with_token(db, "elsewhere")
    with db.session() as s:
        assert auth.authenticate(s, token) is not None
    with db.engine.begin() as conn:
        conn.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == auth.hash_token(token))
            .values(revoked=True)
        )
    with db.session() as s:
        assert auth.authenticate(s, token) is not None  # within the bound: still cached
    later = auth.TOKEN_CACHE.clock() + auth.AUTH_CACHE_SECONDS + 0.01
    monkeypatch.setattr(auth.TOKEN_CACHE, "clock", lambda: later)
    with db.session() as s:
        assert auth.authenticate(s, token) is None


def test_the_cached_user_can_be_written_with(db: Database) -> None:
    """The cached user is merged into the request's session: usable like a loaded one."""
    from soc_api import audit
    from soc_api.auth import authenticate

    token = _user_with_token(db, "writer")
    with db.session() as s:
        authenticate(s, token)
    with db.session() as s:
        user = authenticate(s, token)
        assert user is not None and user in s
        audit.record(s, user.name, "test.write", "user", user.id)
        s.flush()
        assert s.get(User, user.id) is user
