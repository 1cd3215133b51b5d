"""Users, their API tokens, the roles, and console login (admin-only user management).

`/api/users…` needs the admin role. `/api/roles` and `/api/me` are open to every signed-in
role; `/api/login` to anyone (rate-limited, `soc_api.access_login`). Every change is audited;
tokens are shown once and stored hashed; users are disabled, never deleted (the audit log and
incidents keep referring to them).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from soc_api import audit
from soc_api.access_login import Limiter, set_password, verify_password, with_password
from soc_api.auth import (
    SESSION_PREFIX,
    AuthError,
    check_units,
    create_user,
    hash_token,
    issue_token,
    token_expires_at,
)
from soc_api.deps import (
    MAX_ID,
    AdminUser,
    CurrentUser,
    ObjectId,
    SessionDep,
    WriteRoute,
    bearer_scheme,
)
from soc_api.errors import ApiProblem, ErrorResponse
from soc_api.labels import ROLES
from soc_api.models import ApiToken, User
from socmon.logging import kv

log = logging.getLogger("socmon.api.access")

RoleCode = Literal["admin", "analyst", "provider-analyst", "sysadmin", "manager", "drill"]
UnitCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S+$")]

Responses = dict[int | str, dict[str, Any]]
_AUTH: Responses = {401: {"model": ErrorResponse}}
_ADMIN: Responses = {401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}}
_NOT_FOUND: Responses = {404: {"model": ErrorResponse}}
_INVALID: Responses = {422: {"model": ErrorResponse}}

router = APIRouter(route_class=WriteRoute, prefix="/users", tags=["users"], responses=_ADMIN)
roles_router = APIRouter(route_class=WriteRoute, tags=["users"], responses=_AUTH)
login_router = APIRouter(route_class=WriteRoute, tags=["login"])


class Labels(BaseModel):
    vi: str
    en: str


class RolePublic(BaseModel):
    code: RoleCode
    label: Labels


class RolesPublic(BaseModel):
    data: list[RolePublic]
    count: int


class UserPublic(BaseModel):
    id: int
    name: str
    role: str
    role_label: Labels | None
    units: list[str] = Field(description='owner-unit codes the user sees; ["*"] = every unit')
    disabled: bool
    has_password: bool = Field(description="the user can log in to the console")
    created_at: datetime


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120, pattern=r"^\S(.*\S)?$")
    role: RoleCode
    units: list[UnitCode] = Field(max_length=500)
    password: str | None = Field(
        default=None, min_length=12, max_length=1024, description="console password (optional)"
    )


class UserUpdate(BaseModel):
    role: RoleCode | None = None
    units: list[UnitCode] | None = Field(default=None, max_length=500)
    disabled: bool | None = None
    password: str | None = Field(
        default=None, min_length=12, max_length=1024, description="null clears the password"
    )


class TokenPublic(BaseModel):
    id: int
    prefix: str = Field(description="the first characters of the token, to recognise it")
    kind: Literal["api", "session"]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked: bool


class TokensPublic(BaseModel):
    data: list[TokenPublic]
    count: int


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret; shown this once, only its hash is stored")


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=1024)


class LoginResponse(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    user: UserPublic


def as_utc(value: datetime) -> datetime:
    """Stored times come back naive from SQLite: they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def user_public(
    session: Session, user: User, *, has_password: bool | None = None
) -> dict[str, Any]:
    if has_password is None:
        has_password = user.id in with_password(session, [user.id])
    return {
        "id": user.id,
        "name": user.name,
        "role": user.role,
        "role_label": ROLES.get(user.role),
        "units": [str(u) for u in (user.units or [])],
        "disabled": user.disabled,
        "has_password": has_password,
        "created_at": as_utc(user.created_at),
    }


def token_public(row: ApiToken) -> dict[str, Any]:
    expires = token_expires_at(row)
    return {
        "id": row.id,
        "prefix": row.prefix,
        "kind": "session" if row.prefix.startswith(SESSION_PREFIX) else "api",
        "created_at": as_utc(row.created_at),
        "last_used_at": as_utc(row.last_used_at) if row.last_used_at else None,
        "expires_at": expires,
        "revoked": row.revoked,
    }


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise ApiProblem(404, "not_found", f"user {user_id} not found")
    return user


def _units(units: list[str]) -> list[str]:
    try:
        return check_units(units)
    except AuthError as e:
        raise ApiProblem(422, "invalid_request", str(e)) from e


# -- roles and the caller ------------------------------------------------------------------
@roles_router.get("/roles", response_model=RolesPublic, summary="The six roles, with labels")
def list_roles(_user: CurrentUser) -> dict[str, Any]:
    data = [{"code": code, "label": labels} for code, labels in ROLES.items()]
    return {"data": data, "count": len(data)}


@roles_router.get("/me", response_model=UserPublic, summary="The signed-in user")
def me(session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    return user_public(session, user)


# -- users ---------------------------------------------------------------------------------
@router.get("", response_model=UsersPublic, summary="List users (admin)")
def list_users(
    session: SessionDep,
    _admin: AdminUser,
    role: Annotated[RoleCode | None, Query()] = None,
    disabled: Annotated[bool | None, Query()] = None,
    unit: Annotated[str | None, Query(max_length=64, description="users who see this unit")] = None,
    q: Annotated[str | None, Query(max_length=120, description="text in the name")] = None,
    sort: Annotated[Literal["name", "-name", "id", "-id"], Query()] = "name",
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    where = []
    if role is not None:
        where.append(User.role == role)
    if disabled is not None:
        where.append(User.disabled.is_(disabled))
    if q:
        where.append(func.lower(User.name).contains(q.lower(), autoescape=True))
    column = User.name if sort.endswith("name") else User.id
    order = column.desc() if sort.startswith("-") else column.asc()
    rows = list(session.scalars(select(User).where(*where).order_by(order, User.id)))
    if unit is not None:  # a JSON list: filtered here, portable across SQLite and PostgreSQL
        rows = [u for u in rows if unit in (u.units or []) or "*" in (u.units or [])]
    page = rows[offset : offset + limit]
    holders = with_password(session, [u.id for u in page])
    data = [user_public(session, u, has_password=u.id in holders) for u in page]
    return {"data": data, "count": len(rows)}


@router.post(
    "",
    response_model=UserPublic,
    status_code=201,
    summary="Create a user (admin); no token is issued, see /tokens",
    responses={409: {"model": ErrorResponse}, **_INVALID},
)
def create(body: UserCreate, session: SessionDep, admin: AdminUser) -> dict[str, Any]:
    units = _units(body.units)
    if session.scalars(select(User).where(User.name == body.name)).first():
        raise ApiProblem(409, "conflict", f"user {body.name!r} already exists")
    try:
        user = create_user(session, body.name, body.role, units, actor=admin.name)
        if body.password is not None:
            set_password(session, user, body.password, actor=admin.name)
    except AuthError as e:
        raise ApiProblem(422, "invalid_request", str(e)) from e
    return user_public(session, user)


@router.get(
    "/{user_id}", response_model=UserPublic, summary="One user (admin)", responses=_NOT_FOUND
)
def get_user(user_id: ObjectId, session: SessionDep, _admin: AdminUser) -> dict[str, Any]:
    return user_public(session, _user(session, user_id))


@router.patch(
    "/{user_id}",
    response_model=UserPublic,
    summary="Change a user's role, units, password or disabled flag (admin)",
    responses={**_NOT_FOUND, 409: {"model": ErrorResponse}, **_INVALID},
)
def update_user(
    user_id: ObjectId, body: UserUpdate, session: SessionDep, admin: AdminUser
) -> dict[str, Any]:
    user = _user(session, user_id)
    changes = body.model_fields_set
    if not changes:
        raise ApiProblem(422, "invalid_request", "nothing to change")
    if user.id == admin.id and (
        ("disabled" in changes and body.disabled)
        or ("role" in changes and body.role not in (None, "admin"))
    ):
        raise ApiProblem(409, "conflict", "an admin cannot disable or demote themselves")
    detail: dict[str, Any] = {}
    if "role" in changes and body.role is not None and body.role != user.role:
        detail["role"] = [user.role, body.role]
        user.role = body.role
    if "units" in changes and body.units is not None:
        units = _units(body.units)
        if units != list(user.units or []):
            detail["units"] = [list(user.units or []), units]
            user.units = units
    if "disabled" in changes and body.disabled is not None and body.disabled != user.disabled:
        detail["disabled"] = [user.disabled, body.disabled]
        user.disabled = body.disabled
    if detail:
        session.flush()
        audit.record(session, admin.name, "user.update", "user", user.id, name=user.name, **detail)
    if "password" in changes:
        try:
            set_password(session, user, body.password, actor=admin.name)
        except AuthError as e:
            raise ApiProblem(422, "invalid_request", str(e)) from e
    return user_public(session, user)


@router.delete(
    "/{user_id}",
    response_model=UserPublic,
    summary="Disable a user (admin): their tokens stop working; the record stays",
    responses={**_NOT_FOUND, 409: {"model": ErrorResponse}},
)
def disable_user(user_id: ObjectId, session: SessionDep, admin: AdminUser) -> dict[str, Any]:
    user = _user(session, user_id)
    if user.id == admin.id:
        raise ApiProblem(409, "conflict", "an admin cannot disable themselves")
    if not user.disabled:
        user.disabled = True
        revoked = 0
        for row in session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False))
        ):
            row.revoked = True
            revoked += 1
        session.flush()
        audit.record(
            session, admin.name, "user.disable", "user", user.id, name=user.name, revoked=revoked
        )
    return user_public(session, user)


# -- tokens --------------------------------------------------------------------------------
@router.get(
    "/{user_id}/tokens",
    response_model=TokensPublic,
    summary="A user's tokens, without their secrets (admin)",
    responses=_NOT_FOUND,
)
def list_tokens(
    user_id: ObjectId,
    session: SessionDep,
    _admin: AdminUser,
    revoked: Annotated[bool | None, Query()] = None,
) -> dict[str, Any]:
    _user(session, user_id)
    where = [ApiToken.user_id == user_id]
    if revoked is not None:
        where.append(ApiToken.revoked.is_(revoked))
    rows = list(session.scalars(select(ApiToken).where(*where).order_by(ApiToken.id)))
    return {"data": [token_public(r) for r in rows], "count": len(rows)}


@router.post(
    "/{user_id}/tokens",
    response_model=TokenCreated,
    status_code=201,
    summary="Issue an API token (admin); the secret is in this response only",
    responses={**_NOT_FOUND, 409: {"model": ErrorResponse}},
)
def create_token(user_id: ObjectId, session: SessionDep, admin: AdminUser) -> dict[str, Any]:
    user = _user(session, user_id)
    if user.disabled:
        raise ApiProblem(409, "conflict", f"user {user.name!r} is disabled")
    token = issue_token(session, user, actor=admin.name)
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).one()
    return {**token_public(row), "token": token}


@router.delete(
    "/{user_id}/tokens/{token_id}",
    response_model=TokenPublic,
    summary="Revoke a token (admin)",
    responses=_NOT_FOUND,
)
def revoke_token(
    user_id: ObjectId, token_id: ObjectId, session: SessionDep, admin: AdminUser
) -> dict[str, Any]:
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user_id:
        raise ApiProblem(404, "not_found", f"token {token_id} of user {user_id} not found")
    if not row.revoked:
        row.revoked = True
        session.flush()
        audit.record(
            session,
            admin.name,
            "token.revoke",
            "user",
            user_id,
            token_id=row.id,
            token_prefix=row.prefix,
        )
    return token_public(row)


# -- console login -------------------------------------------------------------------------
def get_limiter(request: Request) -> Limiter:
    limiter: Limiter = request.app.state.login_limiter
    return limiter


class RateLimited(ApiProblem):
    def __init__(self, retry_after: int) -> None:
        super().__init__(429, "rate_limited", f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


@login_router.post(
    "/login",
    response_model=LoginResponse,
    summary="Console login: user name and password give a session token (8 h)",
    responses={
        401: {"model": ErrorResponse},
        429: {
            "model": ErrorResponse,
            "description": "too many failures for this user name or client address",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
        503: {"model": ErrorResponse},
    },
)
def login(
    body: LoginRequest,
    request: Request,
    session: SessionDep,
    limiter: Annotated[Limiter, Depends(get_limiter)],
) -> dict[str, Any]:
    client = request.client.host if request.client else "unknown"
    keys = (f"user:{body.username.lower()}", f"ip:{client}")
    wait = limiter.retry_after(*keys)
    if wait:
        log.warning("login refused %s", kv(user=body.username, client=client, reason="rate"))
        raise RateLimited(wait)
    try:
        user = verify_password(session, body.username, body.password)
    except AuthError as e:
        raise ApiProblem(503, "unavailable", str(e)) from e
    if user is None:
        limiter.failure(*keys)
        log.warning("login failed %s", kv(user=body.username, client=client))
        raise ApiProblem(401, "unauthenticated", "wrong user name or password")
    limiter.success(keys[0])
    token = issue_token(session, user, actor=user.name, session_token=True)
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).one()
    expires = token_expires_at(row)
    assert expires is not None
    return {"token": token, "expires_at": expires, "user": user_public(session, user)}


@roles_router.post(
    "/logout",
    response_model=TokenPublic,
    summary="Revoke the token this request carries",
)
def logout(
    session: SessionDep,
    user: CurrentUser,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> dict[str, Any]:
    assert creds is not None  # CurrentUser has checked it
    row = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == hash_token(creds.credentials))
    ).one()
    row.revoked = True
    session.flush()
    audit.record(
        session,
        user.name,
        "token.revoke",
        "user",
        user.id,
        token_id=row.id,
        token_prefix=row.prefix,
    )
    return token_public(row)
