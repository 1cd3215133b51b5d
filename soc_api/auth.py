"""Users and API tokens. Tokens are random, shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api import audit
from soc_api.labels import ROLES
from soc_api.models import ApiToken, User
from socmon.errors import SocmonError

TOKEN_PREFIX = "smk_"


class AuthError(SocmonError):
    """Authentication or user-management failure."""


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is safe here (no brute force).
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, name: str, role: str, units: list[str], *, actor: str) -> User:
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if not name or len(name) > 120:
        raise AuthError("user name must be 1 to 120 characters")
    if session.scalars(select(User).where(User.name == name)).first():
        raise AuthError(f"user {name!r} already exists")
    user = User(name=name, role=role, units=units, created_at=datetime.now(UTC))
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", "user", user.id, name=name, role=role, units=units)
    return user


def issue_token(session: Session, user: User, *, actor: str) -> str:
    """Create a token for `user` and return it; only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        token_hash=hash_token(token),
        prefix=token[:10],
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "token.create", "user", user.id, token_prefix=row.prefix)
    return token


def authenticate(session: Session, token: str) -> User | None:
    """The active user owning `token`, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalars(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False)
        )
    ).first()
    if row is None or row.user.disabled:
        return None
    row.last_used_at = datetime.now(UTC)
    return row.user
