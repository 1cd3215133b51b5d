"""The state database on both backends: URLs, errors, migrations and PostgreSQL specifics.

Tests taking `db` run on SQLite and on PostgreSQL (tests/conftest.py; docs/database.md).
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from soc_api.models import AuditRecord, User
from socmon.cli import main
from socmon.db import Database, DatabaseError, alembic_config, database_url, masked_url
from tests.conftest import PgDatabases


def test_postgresql_urls_mean_psycopg_3() -> None:
    for url in ("postgresql://socmon@db/socmon", "postgres://socmon@db/socmon"):
        assert database_url(url).drivername == "postgresql+psycopg"
    assert database_url("postgresql+psycopg://socmon@db/socmon").drivername == "postgresql+psycopg"
    assert database_url("sqlite:////var/lib/socmon/socmon.db").get_backend_name() == "sqlite"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql+psycopg2://socmon:pw@db/socmon", "driver 'psycopg2' is not supported"),
        ("mysql://socmon:pw@db/socmon", "only sqlite:/// and postgresql+psycopg://"),
        ("not a url", "bad database URL"),
    ],
)
def test_unsupported_urls_are_refused_with_the_password_masked(url: str, reason: str) -> None:
    with pytest.raises(DatabaseError, match=re.escape(reason)) as e:
        Database(url)
    assert ":pw@" not in str(e.value)


def test_unreachable_server_is_a_database_error_without_the_password() -> None:
    url = "postgresql+psycopg://socmon:S3cret-pw@127.0.0.1:1/socmon?connect_timeout=2"
    db = Database(url)
    try:
        with pytest.raises(DatabaseError, match="cannot connect to the database") as e:
            db.migrate()
        assert "S3cret-pw" not in str(e.value)
        assert "socmon:***@127.0.0.1:1/socmon" in str(e.value)
        health = db.health()
        assert health["status"] == "unreachable" and "S3cret-pw" not in health["error"]
    finally:
        db.dispose()
    assert masked_url(url) == "postgresql+psycopg://socmon:***@127.0.0.1:1/socmon?connect_timeout=2"


def test_migrations_are_idempotent_and_name_constraints_by_convention(db: Database) -> None:
    db.migrate()
    insp = inspect(db.engine)
    assert {"users", "api_tokens", "audit_log", "incidents", "incident_alerts"} <= set(
        insp.get_table_names()
    )
    assert {c["name"] for c in insp.get_unique_constraints("users")} == {"uq_users_name"}
    if db.engine.dialect.name == "postgresql":  # SQLite does not keep primary key names
        assert insp.get_pk_constraint("users")["name"] == "pk_users"
        assert {fk["name"] for fk in insp.get_foreign_keys("api_tokens")} == {
            "fk_api_tokens_user_id_users"
        }
    assert db.health() == {"status": "ok", "dialect": db.engine.dialect.name}


def test_migrations_downgrade_to_nothing_and_back(db: Database) -> None:
    cfg = alembic_config(db.engine.url.render_as_string(hide_password=False))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    db.migrate()
    assert "incidents" in inspect(db.engine).get_table_names()


def test_timestamps_booleans_and_json_round_trip(db: Database) -> None:
    ts = datetime(2026, 11, 23, 10, 30, 15, 123456, tzinfo=UTC)
    detail = {"vi": "sự cố nghiêm trọng", "n": [1, 2.5, None], "ok": True, "z": {"b": 1, "a": 2}}
    with db.session() as s:
        s.add(
            AuditRecord(
                ts=ts,
                actor="cli",
                action="test",
                object_type="t",
                object_id="1",
                detail=detail,
                prev_hash="0" * 64,
                hash="1" * 64,
            )
        )
    with db.session() as s:
        row = s.scalars(select(AuditRecord)).one()
        assert row.detail == detail and list(row.detail["z"]) == ["b", "a"]  # order kept
        got = row.ts if row.ts.tzinfo else row.ts.replace(tzinfo=UTC)  # SQLite drops the zone
        assert got == ts
        assert s.scalar(text("SELECT count(*) FROM users WHERE disabled = :f"), {"f": False}) == 0


def test_postgresql_sessions_read_timestamps_in_utc(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no time zones")
    local = datetime(2026, 11, 23, 17, 30, tzinfo=timezone(timedelta(hours=7)))
    with db.engine.connect() as conn:
        assert conn.execute(text("SHOW TimeZone")).scalar_one() == "UTC"
        got = conn.execute(text("SELECT CAST(:t AS timestamptz)"), {"t": local}).scalar_one()
    assert got == local and got.utcoffset() == timedelta(0)


def test_concurrent_first_migrations_do_not_collide(pg_databases: PgDatabases) -> None:
    """`socmon up` and `socmon admin create` started at once on an empty PostgreSQL."""
    name = pg_databases.create(migrated=False)
    dbs = [Database(pg_databases.url_of(name)) for _ in range(3)]
    errors: list[BaseException] = []

    def run(d: Database) -> None:
        try:
            d.migrate()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(d,)) for d in dbs]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert "incidents" in inspect(dbs[0].engine).get_table_names()
    finally:
        for d in dbs:
            d.dispose()
        pg_databases.drop(name)


def test_cli_migrates_an_empty_database_given_by_url(
    empty_db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`SOCMON_DB_URL` as an operator sets it: `socmon admin create`, then `audit verify`."""
    monkeypatch.setenv("SOCMON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SOCMON_DB_URL", empty_db_url)
    assert main(["admin", "create", "alice", "--role", "analyst", "--units", "so-yte"]) == 0
    assert capsys.readouterr().out.strip().startswith("smk_")
    assert main(["audit", "verify"]) == 0
    db = Database(empty_db_url)
    try:
        with db.session() as s:
            user = s.scalars(select(User)).one()
        assert (user.name, user.role, user.units, user.disabled) == (
            "alice",
            "analyst",
            ["so-yte"],
            False,
        )
    finally:
        db.dispose()
