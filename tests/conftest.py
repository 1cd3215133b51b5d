"""Shared fixtures: a real osmem-server, a migrated SQLite database, isolated settings."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from socmon.config import Settings, get_settings, load_settings
from socmon.db import Database
from socmon.embedded import EmbeddedStore
from socmon.store import Store

_ns = itertools.count()


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


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'state.db'}")
    database.migrate()
    yield database
    database.dispose()
