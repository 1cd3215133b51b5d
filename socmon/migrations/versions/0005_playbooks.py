"""Playbook runs and tasks (issue 6, playbooks).

A run is one playbook of the library instantiated for one incident; its tasks carry the
owner role, the due time (incident opened + SLA) and the state open → done / skipped.
Generic types only (SQLite and PostgreSQL). A branch beside 0004 (both on 0003).

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "playbook_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "incident_id",
            sa.Integer,
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("playbook_id", sa.String(64), nullable=False),
        sa.Column("group", sa.String(8), nullable=False),
        sa.Column("path", sa.String(16), nullable=False),
        sa.Column("regime", sa.String(16), nullable=False),
        sa.Column("unit", sa.String(64), nullable=True, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("incident_id", "playbook_id"),
    )
    op.create_table(
        "playbook_tasks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "run_id",
            sa.Integer,
            sa.ForeignKey("playbook_runs.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.JSON, nullable=False),
        sa.Column("owner_role", sa.String(32), nullable=False),
        sa.Column("sla_seconds", sa.Integer, nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("done_by", sa.String(120), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("run_id", "task_id"),
    )


def downgrade() -> None:
    op.drop_table("playbook_tasks")
    op.drop_table("playbook_runs")
