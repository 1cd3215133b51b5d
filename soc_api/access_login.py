"""Console login: argon2 password hashes and the failed-login rate limiter.

Passwords are hashed with argon2id (argon2-cffi defaults: RFC 9106 low-memory profile) and kept
in `users.password_hash` (migration 0006). A user without a hash cannot log in with a password;
there is no default password anywhere.

The limiter allows at most `max_failures` failed logins per user name and, separately, per
client address within `window` seconds; beyond that `POST /api/login` answers 429 with
`Retry-After` until the oldest failure leaves the window — also for the right password, so
guessing cannot go on in the background. A success clears the user name's failures. The
API's limiter (`DbLoginLimiter`) keeps the failures in the database (migration 0009), so every
API process (several uvicorn workers, several hosts) counts the same failures and a restart
forgets nothing; `LoginLimiter` is the same rule in one process's memory (tests, tools).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from soc_api import audit
from soc_api.auth import AuthError
from soc_api.models import User
from socmon.db import Database

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher()
# Verified when the user does not exist, so both cases cost the same time.
_DUMMY_HASH = _hasher.hash("socmon-no-such-user-padding")

# A Core view of the column added by migration 0006 (not on the ORM model: the hash never
# travels with a `User` object).
_users = sa.table("users", sa.column("id", sa.Integer), sa.column("password_hash", sa.String))


_seen_with_column: set[str] = set()  # databases known to have the column (it never goes away)


def password_column_present(session: Session) -> bool:
    url = str(session.get_bind().engine.url)
    if url in _seen_with_column:
        return True
    cols = sa.inspect(session.get_bind()).get_columns("users")
    if any(c["name"] == "password_hash" for c in cols):
        _seen_with_column.add(url)
        return True
    return False


def _require_column(session: Session) -> None:
    if not password_column_present(session):
        raise AuthError("console passwords need database migration 0006 (users.password_hash)")


def check_password_rules(password: str, name: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise AuthError(
            f"a password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    if password.strip().lower() == name.strip().lower():
        raise AuthError("the password must differ from the user name")


def set_password(session: Session, user: User, password: str | None, *, actor: str) -> None:
    """Set (or with None, clear) `user`'s console password; audited without the secret."""
    _require_column(session)
    digest = None
    if password is not None:
        check_password_rules(password, user.name)
        digest = _hasher.hash(password)
    session.execute(sa.update(_users).where(_users.c.id == user.id).values(password_hash=digest))
    action = "user.password_set" if password is not None else "user.password_clear"
    audit.record(session, actor, action, "user", user.id, name=user.name)


def with_password(session: Session, user_ids: list[int]) -> set[int]:
    """Which of `user_ids` have a console password."""
    if not user_ids or not password_column_present(session):
        return set()
    return set(
        session.scalars(
            sa.select(_users.c.id).where(
                _users.c.id.in_(user_ids), _users.c.password_hash.is_not(None)
            )
        )
    )


def verify_password(session: Session, name: str, password: str) -> User | None:
    """The active user `name` when `password` is theirs, else None (constant work either way)."""
    _require_column(session)
    user = session.scalars(sa.select(User).where(User.name == name)).first()
    stored = None
    if user is not None:
        stored = session.scalar(sa.select(_users.c.password_hash).where(_users.c.id == user.id))
    try:
        _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or stored is None or user.disabled:
        return None
    if _hasher.check_needs_rehash(stored):
        session.execute(
            sa.update(_users)
            .where(_users.c.id == user.id)
            .values(password_hash=_hasher.hash(password))
        )
    return user


class Limiter(Protocol):
    def retry_after(self, *keys: str) -> int: ...
    def failure(self, *keys: str) -> None: ...
    def success(self, key: str) -> None: ...


class LoginLimiter:
    """Failed logins per key (a user name, a client address) in a sliding window, in memory."""

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def retry_after(self, *keys: str) -> int:
        """Seconds until every key may try again (0: allowed now)."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                q = self._recent(key, now)
                if len(q) >= self.max_failures:
                    wait = max(wait, q[-self.max_failures] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def failure(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) >= self.max_keys:  # bounded memory under a spray of names
                oldest = min(self._failures, key=lambda k: self._failures[k][-1])
                del self._failures[oldest]
            for key in keys:
                q = self._recent(key, now)
                q.append(now)
                self._failures[key] = q

    def success(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


_failures = sa.table(
    "login_failures",
    sa.column("id", sa.Integer),
    sa.column("key", sa.String),
    sa.column("at", sa.Float),
)


class DbLoginLimiter:
    """`LoginLimiter`'s rule over the `login_failures` table: shared by every API process.

    Each call runs in a transaction of its own, so a failure is recorded even though the
    login request itself answers 401 (and rolls its own session back). Rows older than the
    window are deleted at each failure, so the table holds one window's failures at most.
    """

    def __init__(
        self,
        db: Database,
        max_failures: int = 5,
        window: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.max_failures = max_failures
        self.window = window
        self.clock = clock

    def retry_after(self, *keys: str) -> int:
        now = self.clock()
        wait = 0.0
        with self.db.session() as session:
            for key in keys:
                times = session.scalars(
                    sa.select(_failures.c.at)
                    .where(_failures.c.key == key, _failures.c.at > now - self.window)
                    .order_by(_failures.c.at.desc())
                    .limit(self.max_failures)
                ).all()
                if len(times) >= self.max_failures:
                    wait = max(wait, times[-1] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def failure(self, *keys: str) -> None:
        now = self.clock()
        with self.db.session() as session:
            session.execute(sa.delete(_failures).where(_failures.c.at <= now - self.window))
            session.execute(sa.insert(_failures), [{"key": k, "at": now} for k in keys])
            session.commit()

    def success(self, key: str) -> None:
        with self.db.session() as session:
            session.execute(sa.delete(_failures).where(_failures.c.key == key))
            session.commit()
