"""Shared fixtures: a real osmem-server, a migrated database (SQLite and PostgreSQL),
isolated settings."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import URL, Engine, create_engine, text

from socmon.config import Settings, get_settings, load_settings
from socmon.db import Database, check_connection, database_url
from socmon.embedded import EmbeddedStore
from socmon.store import Store

_ns = itertools.count()

#: An empty PostgreSQL database the `db` fixture may create databases beside
#: (`postgresql+psycopg://...`; scripts/test.sh starts a throwaway cluster and sets it).
#: Taken out of the environment here: socmon refuses unknown SOCMON_* settings, and
#: module- or session-scoped fixtures load settings before `_isolated_env` runs.
PG_URL = os.environ.pop("SOCMON_TEST_PG_URL", "")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No SOCMON_* variable of the developer's shell leaks into a test (the corpus path may)."""
    import os

    for key in list(os.environ):
        if key.startswith("SOCMON_") and key != "SOCMON_CORPUS":
            monkeypatch.delenv(key)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data", namespace=f"t{next(_ns)}")


@pytest.fixture(scope="session")
def osmem() -> Iterator[EmbeddedStore]:
    server = EmbeddedStore()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def store(osmem: EmbeddedStore, settings: Settings) -> Iterator[Store]:
    """A connected store with templates installed, in a namespace of its own."""
    st = Store.connect(settings, osmem.url)
    st.setup()
    yield st
    st.close()


class PgDatabases:
    """Creates and drops test databases on one PostgreSQL server.

    The schema is built once per session by the real migrations (`Database.migrate`) in a
    template database; each test gets a copy (`CREATE DATABASE ... TEMPLATE`), dropped after.
    """

    def __init__(self, url: str) -> None:
        self.url: URL = database_url(url)
        self.admin: Engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        self.prefix = f"socmon_t{uuid.uuid4().hex[:10]}"
        self.template = f"{self.prefix}_tpl"
        self._n = itertools.count()
        check_connection(self.admin)  # DatabaseError naming the server, password masked
        self._execute(f'CREATE DATABASE "{self.template}"')
        template = Database(self.url_of(self.template))
        try:
            template.migrate()
        except BaseException:
            template.dispose()
            self.close()
            raise
        template.dispose()

    def url_of(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(sql))

    def create(self, *, migrated: bool = True) -> str:
        """A new database: a copy of the migrated template, or empty (`migrated=False`)."""
        name = f"{self.prefix}_{next(self._n)}"
        if migrated:
            # ~0.05 s idle, ~0.3 s on a loaded machine (a migration from scratch: 0.15-0.5 s)
            self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        else:
            self._execute(f'CREATE DATABASE "{name}"')
        return name

    def drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.drop(self.template)
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    if not PG_URL:
        if IN_CI:
            pytest.fail("CI=true but SOCMON_TEST_PG_URL is not set: PostgreSQL tests cannot run")
        pytest.skip("PostgreSQL tests need SOCMON_TEST_PG_URL (bash scripts/test.sh sets it)")
    dbs = PgDatabases(PG_URL)
    yield dbs
    dbs.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database migrated to the newest schema: a SQLite file, or a PostgreSQL database of
    its own (skipped without SOCMON_TEST_PG_URL, an error in CI)."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'state.db'}")
        database.migrate()
        yield database
        database.dispose()
        return
    pg: PgDatabases = request.getfixturevalue("pg_databases")
    name = pg.create()
    database = Database(pg.url_of(name))
    try:
        database.migrate()  # at head already: checks the copy, costs one query
        yield database
    finally:
        database.dispose()
        pg.drop(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """`SOCMON_DB_URL` of an empty database for a socmon process to migrate itself (e2e):
    a new SQLite file, or a new PostgreSQL database (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'socmon.db'}"
        return
    pg: PgDatabases = request.getfixturevalue("pg_databases")
    name = pg.create(migrated=False)
    try:
        yield pg.url_of(name)
    finally:
        pg.drop(name)
