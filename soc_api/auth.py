"""Users and API tokens. Tokens are random, shown once, stored as SHA-256 hashes.

Two kinds of token share the `api_tokens` table: API tokens (`smk_…`, valid until revoked)
and console session tokens from `POST /api/login` (`sms_…`, valid for `SESSION_TTL` after
they were issued, then refused; revocable as well).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api import audit
from soc_api.labels import ROLES
from soc_api.models import ApiToken, User
from socmon.errors import SocmonError

TOKEN_PREFIX = "smk_"
SESSION_PREFIX = "sms_"
SESSION_TTL = timedelta(hours=8)  # one shift of the SOC


class AuthError(SocmonError):
    """Authentication or user-management failure."""


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is safe here (no brute force).
    return hashlib.sha256(token.encode()).hexdigest()


def check_units(units: list[str]) -> list[str]:
    clean = [str(u).strip() for u in units]
    if any(not u or len(u) > 64 for u in clean):
        raise AuthError("unit codes must be 1 to 64 characters")
    return sorted(set(clean))


def create_user(session: Session, name: str, role: str, units: list[str], *, actor: str) -> User:
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if not name or len(name) > 120 or name != name.strip():
        raise AuthError("user name must be 1 to 120 characters, without surrounding spaces")
    if session.scalars(select(User).where(User.name == name)).first():
        raise AuthError(f"user {name!r} already exists")
    units = check_units(units)
    user = User(name=name, role=role, units=units, created_at=datetime.now(UTC))
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", "user", user.id, name=name, role=role, units=units)
    return user


def issue_token(session: Session, user: User, *, actor: str, session_token: bool = False) -> str:
    """Create a token for `user` and return it; only its hash is stored."""
    token = (SESSION_PREFIX if session_token else TOKEN_PREFIX) + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        token_hash=hash_token(token),
        prefix=token[:10],
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    action = "session.create" if session_token else "token.create"
    audit.record(session, actor, action, "user", user.id, token_id=row.id, token_prefix=row.prefix)
    return token


def token_expires_at(row: ApiToken) -> datetime | None:
    """When a console session token stops working (None for API tokens)."""
    if not row.prefix.startswith(SESSION_PREFIX):
        return None
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return created + SESSION_TTL


LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate(session: Session, token: str) -> User | None:
    """The active user owning `token`, or None."""
    if not token.startswith((TOKEN_PREFIX, SESSION_PREFIX)):
        return None
    row = session.scalars(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False)
        )
    ).first()
    if row is None or row.user.disabled:
        return None
    expires = token_expires_at(row)
    if expires is not None and expires <= datetime.now(UTC):
        return None
    now = datetime.now(UTC)
    last = row.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    if last is None or now - last >= LAST_USED_RESOLUTION:
        # Recorded once a minute, and committed at once: otherwise every read request would
        # hold SQLite's write lock until its response is sent (a pile-up under concurrency).
        row.last_used_at = now
        session.commit()
    return row.user
