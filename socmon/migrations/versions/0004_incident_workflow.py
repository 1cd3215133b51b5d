"""Incident workflow: grouping slot, assignment, merge, observables, timeline, comments,
suppressions.

`incidents.dedup_key` is unique: concurrent writers of one alert storm cannot open two
incidents for one grouping key and window. Generic types only (SQLite and PostgreSQL);
columns of existing tables are added and dropped with plain ALTER TABLE (SQLite >= 3.35),
never by a batch recreate, which under SQLite's foreign keys would cascade-delete rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Columns are only added (plain ALTER TABLE ADD COLUMN, on SQLite too): a batch recreate
    # of `incidents` under SQLite's foreign keys would cascade-delete its alerts.
    for column in (
        sa.Column("dedup_key", sa.String(120), nullable=True),
        sa.Column("level", sa.Integer, nullable=True),
        sa.Column("severity_manual", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("state_secret", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("assignee_id", sa.Integer, nullable=True),
        sa.Column("merged_into_id", sa.Integer, nullable=True),
    ):
        op.add_column("incidents", column)
    if op.get_bind().dialect.name != "sqlite":
        # SQLite cannot add a constraint without recreating the table (see above); there the
        # service checks the references itself.
        op.create_foreign_key(
            "fk_incidents_assignee_id_users",
            "incidents",
            "users",
            ["assignee_id"],
            ["id"],
            ondelete="SET NULL",
        )
        op.create_foreign_key(
            "fk_incidents_merged_into_id_incidents",
            "incidents",
            "incidents",
            ["merged_into_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_index("ix_incidents_dedup_key", "incidents", ["dedup_key"], unique=True)
    op.create_index("ix_incidents_assignee_id", "incidents", ["assignee_id"])
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_index("ix_incidents_last_seen", "incidents", ["last_seen"])
    op.add_column("incident_alerts", sa.Column("observables", sa.JSON, nullable=True))
    op.add_column("incident_alerts", sa.Column("level", sa.String(16), nullable=True))
    op.create_table(
        "incident_observables",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "incident_id",
            sa.Integer,
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.String(1000), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.UniqueConstraint("incident_id", "type", "value"),
    )
    op.create_index("ix_incident_observables_type_value", "incident_observables", ["type", "value"])
    op.create_table(
        "incident_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "incident_id",
            sa.Integer,
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_table(
        "incident_comments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "incident_id",
            sa.Integer,
            sa.ForeignKey("incidents.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(120), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rule_id", sa.String(255), nullable=False, index=True),
        sa.Column("match", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("unit", sa.String(64), nullable=True, index=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_hit_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "suppressed_alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "suppression_id",
            sa.Integer,
            sa.ForeignKey("suppressions.id", ondelete="SET NULL"),
            nullable=True,
            index=True,
        ),
        sa.Column("alert_id", sa.String(64), nullable=False, unique=True),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(64), nullable=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "suppressed_alerts",
        "suppressions",
        "incident_comments",
        "incident_events",
        "incident_observables",
    ):
        op.drop_table(table)
    # Plain DROP COLUMN (SQLite >= 3.35): a batch recreate would cascade-delete rows.
    op.drop_column("incident_alerts", "level")
    op.drop_column("incident_alerts", "observables")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_incidents_merged_into_id_incidents", "incidents", "foreignkey")
        op.drop_constraint("fk_incidents_assignee_id_users", "incidents", "foreignkey")
    for index in (
        "ix_incidents_last_seen",
        "ix_incidents_status",
        "ix_incidents_assignee_id",
        "ix_incidents_dedup_key",
    ):
        op.drop_index(index, table_name="incidents")
    for column in (
        "merged_into_id",
        "assignee_id",
        "state_secret",
        "severity_manual",
        "level",
        "dedup_key",
    ):
        op.drop_column("incidents", column)
