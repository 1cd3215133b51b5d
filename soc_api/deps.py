"""FastAPI dependencies: database session, current user, the caller's unit scope."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ColumnElement, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from soc_api.auth import authenticate
from soc_api.errors import ApiProblem
from soc_api.models import User
from socmon.db import Database

_bearer = HTTPBearer(
    auto_error=False, description="API token from `socmon admin create` or `/api/users`"
)


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    with db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_current_user(
    session: SessionDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    if creds is None or creds.scheme.lower() != "bearer":
        raise ApiProblem(401, "unauthenticated", "a bearer token is required")
    user = authenticate(session, creds.credentials)
    if user is None:
        raise ApiProblem(401, "unauthenticated", "invalid or revoked token")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


@dataclass(frozen=True)
class Scope:
    """The owner units a caller may see. Tenant filtering happens only here."""

    units: frozenset[str]
    everything: bool

    def filter(self, column: InstrumentedAttribute[str | None]) -> ColumnElement[bool]:
        if self.everything:
            return true()
        return column.in_(sorted(self.units))


def get_scope(user: CurrentUser) -> Scope:
    units = frozenset(str(u) for u in (user.units or []))
    return Scope(units=units, everything="*" in units)


AgencyScope = Annotated[Scope, Depends(get_scope)]
