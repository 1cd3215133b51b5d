"""Migration 0005: a branch beside 0004 that creates and drops only the playbook tables
(0006 merges the two branches, so it and the later ones are stepped down first)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from socmon.db import Database, alembic_config


def test_0005_downgrades_alone_and_upgrades_again(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert {"playbook_runs", "playbook_tasks", "incidents"} <= tables
    cfg = alembic_config(db.engine.url.render_as_string(hide_password=False))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")  # undo the merge (0006) and what follows it first
    at_0005 = set(inspect(db.engine).get_table_names())
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005@-1")
    after = set(inspect(db.engine).get_table_names())
    assert "playbook_runs" not in after and "playbook_tasks" not in after
    assert at_0005 - after == {"playbook_runs", "playbook_tasks"}
    db.migrate()
    assert {"playbook_runs", "playbook_tasks"} <= set(inspect(db.engine).get_table_names())
