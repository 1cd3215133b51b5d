"""Users and API tokens. Tokens are random, shown once, stored as SHA-256 hashes.

Two kinds of token share the `api_tokens` table: API tokens (`smk_…`, valid until revoked)
and console session tokens from `POST /api/login` (`sms_…`, valid for `SESSION_TTL` after
they were issued, then refused; revocable as well).

`authenticate` keeps the users of recently seen tokens for `AUTH_CACHE_SECONDS` in this
process's memory (keyed by the token's hash), so a busy client costs no query per request.
A change to a user's role, units or disabled flag, or to a token's revocation, flushed by any
session of this process empties the cache at once; another process (`socmon api --workers N`)
sees it within `AUTH_CACHE_SECONDS` at most: that is the bound on revocation latency.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import InstanceState, Session, make_transient_to_detached

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


AUTH_CACHE_SECONDS = 5.0  # how long a revocation in another process may go unseen here
# A change to any attribute of these but a token's last use empties the cache.
_WATCHED = (User, ApiToken)
_UNWATCHED = frozenset({"last_used_at"})


@dataclass(frozen=True)
class _Seen:
    user: User  # a detached copy, merged into each request's session
    expires_at: datetime | None  # the token's own expiry (console sessions)
    until: float  # the cache's clock (time.monotonic) when this entry must be read again


class _TokenCache:
    """Token hash -> its user, for a few seconds. A generation counter keeps an entry read
    before an invalidation from being stored after it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: dict[str, _Seen] = {}
        self._lock = threading.Lock()
        self.generation = 0

    def get(self, digest: str) -> _Seen | None:
        seen = self._entries.get(digest)
        if seen is not None and seen.until <= self.clock():
            self._entries.pop(digest, None)
            return None
        return seen

    def put(self, digest: str, seen: _Seen, generation: int) -> None:
        with self._lock:
            if generation == self.generation:
                self._entries[digest] = seen

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()


TOKEN_CACHE = _TokenCache()


def _snapshot(user: User) -> User:
    copy = User(
        id=user.id,
        name=user.name,
        role=user.role,
        units=list(user.units or []),
        disabled=user.disabled,
        created_at=user.created_at,
    )
    make_transient_to_detached(copy)
    return copy


def _changes_access(session: Session) -> bool:
    if any(isinstance(obj, _WATCHED) for obj in session.deleted):
        return True
    for obj in session.dirty:
        if isinstance(obj, _WATCHED) and any(
            attr.history.has_changes()
            for attr in cast(InstanceState[Any], inspect(obj)).attrs
            if attr.key not in _UNWATCHED
        ):
            return True
    return False


@event.listens_for(Session, "after_flush")
def _forget_on_flush(session: Session, _context: Any) -> None:
    if _changes_access(session):
        TOKEN_CACHE.clear()
        session.info["socmon_access_changed"] = True


@event.listens_for(Session, "after_commit")
def _forget_on_commit(session: Session) -> None:
    # Cleared again once committed: a request may have cached the old row meanwhile.
    if session.info.pop("socmon_access_changed", False):
        TOKEN_CACHE.clear()


@event.listens_for(Session, "after_rollback")
def _reset_on_rollback(session: Session) -> None:
    session.info.pop("socmon_access_changed", None)


def authenticate(session: Session, token: str) -> User | None:
    """The active user owning `token`, or None."""
    if not token.startswith((TOKEN_PREFIX, SESSION_PREFIX)):
        return None
    digest = hash_token(token)
    seen = TOKEN_CACHE.get(digest)
    if seen is not None:
        if seen.expires_at is not None and seen.expires_at <= datetime.now(UTC):
            return None
        return session.merge(seen.user, load=False)
    generation = TOKEN_CACHE.generation
    row = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == digest, ApiToken.revoked.is_(False))
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
    if AUTH_CACHE_SECONDS > 0:
        until = TOKEN_CACHE.clock() + AUTH_CACHE_SECONDS
        TOKEN_CACHE.put(digest, _Seen(_snapshot(row.user), expires, until), generation)
    return row.user
