from pathlib import Path

from sqlalchemy import inspect

from socmon.db import Database


def test_migrations_create_schema_and_are_idempotent(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x' / 'state.db'}")
    db.migrate()
    db.migrate()
    tables = set(inspect(db.engine).get_table_names())
    assert {
        "users",
        "api_tokens",
        "audit_log",
        "incidents",
        "incident_alerts",
        "alembic_version",
    } <= tables
    assert db.health()["status"] == "ok"
    db.dispose()
