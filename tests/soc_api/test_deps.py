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
