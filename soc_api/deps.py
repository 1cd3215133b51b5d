"""FastAPI dependencies: database session, current user, role checks, the caller's unit scope."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ColumnElement, and_, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from soc_api.auth import authenticate
from soc_api.errors import ApiProblem
from soc_api.models import User
from socmon.db import Database

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="API token from `socmon admin create`, `/api/users/{id}/tokens` or `/api/login`",
)

# Roles that see every unit whatever their `units` list says.
ALL_UNITS_ROLES = frozenset({"admin"})
# Roles that never see systems flagged state-secret (the outsourced SOC, DOMAIN.md §2).
NO_STATE_SECRET_ROLES = frozenset({"provider-analyst"})


# Dependencies that do no I/O are `async def`: they run in the event loop, not in a worker
# thread each (a thread hop per dependency per request shows at hundreds of requests/s).


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    with db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_current_user(
    session: SessionDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> User:
    if creds is None or creds.scheme.lower() != "bearer":
        raise ApiProblem(401, "unauthenticated", "a bearer token is required")
    user = authenticate(session, creds.credentials)
    if user is None:
        raise ApiProblem(401, "unauthenticated", "invalid, expired or revoked token")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]

# A database id in a path: bounded to what every database's integer key holds, so a huge
# number is a 422, not an overflow inside the driver.
MAX_ID = 2**31 - 1
ObjectId = Annotated[int, Path(ge=1, le=MAX_ID)]


def require_roles(*roles: str) -> Callable[[User], Awaitable[User]]:
    """A dependency: the current user, or 403 unless their role is one of `roles`.

    Use as `user: Annotated[User, Depends(require_roles("admin"))]` (or in a router's
    `dependencies=`): it runs before the body is validated, so a denied caller always gets 403.
    """
    allowed = frozenset(roles)

    async def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise ApiProblem(
                403, "forbidden", f"this needs the {' or '.join(sorted(allowed))} role"
            )
        return user

    check.__name__ = f"require_{'_'.join(sorted(r.replace('-', '_') for r in allowed))}"
    return check


AdminUser = Annotated[User, Depends(require_roles("admin"))]


@dataclass(frozen=True)
class Scope:
    """What a caller may see: owner units, and whether state-secret systems are hidden.

    Tenant filtering happens only here: `filter()` for SQL tables, `store_filters()` for
    store queries, `allows()` for rows already in memory.
    """

    units: frozenset[str]
    everything: bool
    hide_state_secret: bool = False

    def filter(
        self,
        column: InstrumentedAttribute[str | None],
        state_secret: InstrumentedAttribute[bool] | None = None,
    ) -> ColumnElement[bool]:
        """The SQL condition on an owner-unit column. The model's `state_secret` column (given,
        or found on the unit column's class) hides flagged rows from provider analysts."""
        secret = state_secret
        if secret is None:
            secret = getattr(column.class_, "state_secret", None)
        cond: ColumnElement[bool] = true() if self.everything else column.in_(sorted(self.units))
        if self.hide_state_secret and secret is not None:
            cond = and_(cond, secret.is_(False))
        return cond

    def allows(self, unit: str | None, *, state_secret: bool = False) -> bool:
        if self.hide_state_secret and state_secret:
            return False
        return self.everything or (unit is not None and unit in self.units)

    def store_filters(self, unit_field: str = "socmon.unit") -> tuple[list[Any], list[Any]]:
        """(filter, must_not) clauses of a store `bool` query for this scope.

        Alerts carry the inventory context of each side and of the reporting device
        (`socmon.{source,destination,observer}.state_secret`, set only when true).
        """
        filters: list[Any] = []
        must_not: list[Any] = []
        if not self.everything:
            filters.append({"terms": {unit_field: sorted(self.units)}})
        if self.hide_state_secret:
            must_not.extend(
                {"term": {f"socmon.{side}.state_secret": True}}
                for side in ("source", "destination", "observer")
            )
        return filters, must_not


def scope_of(user: User) -> Scope:
    units = frozenset(str(u) for u in (user.units or []))
    return Scope(
        units=units - {"*"},
        everything="*" in units or user.role in ALL_UNITS_ROLES,
        hide_state_secret=user.role in NO_STATE_SECRET_ROLES,
    )


def request_scope(request: Request, user: User) -> Scope:
    """The caller's scope; a unit includes the units below it in the inventory's tree (a
    district's user sees its communes), read through `app.state.unit_tree` (re-read every
    30 s, so a re-parented unit moves with its objects within that time). The API (through
    `get_scope`) and the console's pages use this one function."""
    scope = scope_of(user)
    tree = getattr(request.app.state, "unit_tree", None)
    if tree is not None and scope.units and not scope.everything:
        scope = replace(scope, units=tree.expand(scope.units))
    return scope


async def get_scope(request: Request, user: CurrentUser) -> Scope:
    return request_scope(request, user)


AgencyScope = Annotated[Scope, Depends(get_scope)]


_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _committing(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        out = endpoint(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Session):
                value.commit()
        return out

    return run


class WriteRoute(APIRoute):
    """A route whose write methods commit the request's session as soon as the endpoint
    returns, before FastAPI serialises the response in another worker thread.

    Committing at the end of the request instead (the session dependency's exit) keeps the
    database's write lock while the request waits for that thread; under concurrency the
    pool fills with requests waiting for the lock and nothing moves (bench/api, decision
    0006). An endpoint that raises is not committed: the session dependency rolls it back.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        methods = {m.upper() for m in kwargs.get("methods") or ()}
        if methods & _WRITE_METHODS and not inspect.iscoroutinefunction(endpoint):
            endpoint = _committing(endpoint)
        super().__init__(path, endpoint, **kwargs)
