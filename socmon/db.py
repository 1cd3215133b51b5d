"""The SQL database: engine, sessions, the declarative base and migrations (Alembic).

PostgreSQL in production (`SOCMON_DB_URL=postgresql+psycopg://user:pass@host/db`, driver
psycopg 3), a SQLite file under the data directory by default. The schema is created and
upgraded only by Alembic migrations (`socmon/migrations/versions/`), never by
`metadata.create_all`, so production databases and tests follow the same path; the test
suite runs on both (docs/database.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import JSON, URL, Engine, MetaData, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from socmon.errors import SocmonError

log = logging.getLogger("socmon.db")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class DatabaseError(SocmonError):
    """The state database failed or is not at the expected schema."""


class Base(DeclarativeBase):
    """Declarative base of every socmon table."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


#: PostgreSQL pool: enough connections for the API's worker threads, the detection engine
#: and the scheduler of one process; connections are checked before use and renewed after
#: half an hour (a firewall may drop idle ones silently).
PG_POOL: dict[str, Any] = {
    "pool_size": 10,
    "max_overflow": 20,
    "pool_timeout": 30,
    "pool_recycle": 1800,
    "pool_pre_ping": True,
}
PG_CONNECT_TIMEOUT_S = 10

#: The largest value of an Integer column (every `id`) on PostgreSQL (int4; SQLite's is
#: int8). Ids from outside (API paths, filters) are validated against it: a larger one is a
#: 422 or 404, never an "integer out of range" error from the server.
MAX_INT_ID = 2**31 - 1

#: Drivers a `postgresql://` URL may name; others (psycopg2, asyncpg...) are not installed.
PG_DRIVERS = ("psycopg",)


def masked_url(url: str | URL) -> str:
    """`url` with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable database URL)"


def database_url(url: str) -> URL:
    """The parsed URL; `postgresql://` and `postgres://` mean the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise DatabaseError(f"bad database URL {masked_url(url)}: {e}") from e
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() not in PG_DRIVERS:
        raise DatabaseError(
            f"database URL {masked_url(parsed)}: driver {parsed.get_driver_name()!r} is not "
            "supported; use postgresql+psycopg://user:password@host/database"
        )
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseError(
            f"database URL {masked_url(parsed)}: only sqlite:/// and postgresql+psycopg:// "
            "are supported"
        )
    return parsed


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout, PostgreSQL a
    sized pool, a connect timeout and UTC as the session time zone."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # Defaults only: a `?connect_timeout=` or `?application_name=` in the URL wins.
    defaults = {"connect_timeout": PG_CONNECT_TIMEOUT_S, "application_name": "socmon"}
    engine = create_engine(
        parsed,
        connect_args={k: v for k, v in defaults.items() if k not in parsed.query},
        **PG_POOL,
    )

    @event.listens_for(engine, "connect", insert=True)
    def _pg_session(dbapi_conn: Any, _record: Any) -> None:
        # Timestamps come back in UTC whatever the server's or the role's TimeZone setting.
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True  # a SET inside the first transaction would be rolled back
        cur = dbapi_conn.cursor()
        cur.execute("SET TIME ZONE 'UTC'")
        cur.close()
        dbapi_conn.autocommit = autocommit

    return engine


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _error_text(e: BaseException, url: URL) -> str:
    """The first line of a driver error, never showing the URL's password."""
    line = (str(e).splitlines() or [type(e).__name__])[0]
    if url.password:
        line = line.replace(str(url.password), "***")
    return line


def check_connection(engine: Engine) -> None:
    """Connect once; DatabaseError (URL password masked) if the server cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as e:
        raise DatabaseError(
            f"cannot connect to the database {masked_url(engine.url)}: {_error_text(e, engine.url)}"
        ) from e


#: Key of the PostgreSQL advisory lock held while migrating: two processes starting at once
#: (`socmon up` and `socmon admin create`) upgrade one after the other, not both together.
MIGRATION_LOCK_KEY = 0x50C_0DB


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest migration (idempotent)."""
    check_connection(engine)
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")  # branches (e.g. 0004 and 0005 both on 0003) allowed
    except SQLAlchemyError as e:
        raise DatabaseError(
            f"database migration failed on {masked_url(engine.url)}: {_error_text(e, engine.url)}"
        ) from e


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def health(self) -> dict[str, Any]:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return {"status": "ok", "dialect": self.engine.dialect.name}
        except SQLAlchemyError as e:
            return {"status": "unreachable", "error": _error_text(e, self.engine.url)}

    def dispose(self) -> None:
        self.engine.dispose()
