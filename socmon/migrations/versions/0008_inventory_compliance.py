"""Inventory and compliance (issue 7): units, sites, links, zones, assets, information systems,
public ranges; attestations, control statuses, snapshots (trend) and evidence records.

Generic types only (SQLite and PostgreSQL). Models: `inventory.tables`.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inv_units",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column(
            "parent",
            sa.String(64),
            sa.ForeignKey("inv_units.code", ondelete="RESTRICT"),
            nullable=True,
            index=True,
        ),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "inv_sites",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column(
            "unit", sa.String(64), sa.ForeignKey("inv_units.code"), nullable=False, index=True
        ),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "inv_links",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column(
            "site", sa.String(64), sa.ForeignKey("inv_sites.code"), nullable=False, index=True
        ),
        sa.Column("edge_router", sa.String(120), nullable=True),
        sa.Column("sensor", sa.String(120), nullable=True),
        sa.Column("bandwidth_mbps", sa.Float, nullable=True),
        sa.Column("provider", sa.String(120), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "inv_zones",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("cidrs", sa.JSON, nullable=False),
        sa.Column("internal", sa.Boolean, nullable=False),
        sa.Column("site", sa.String(64), sa.ForeignKey("inv_sites.code"), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "inv_assets",
        sa.Column("name", sa.String(120), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column(
            "unit", sa.String(64), sa.ForeignKey("inv_units.code"), nullable=False, index=True
        ),
        sa.Column("site", sa.String(64), sa.ForeignKey("inv_sites.code"), nullable=True),
        sa.Column("zone", sa.String(64), sa.ForeignKey("inv_zones.name"), nullable=True),
        sa.Column("ips", sa.JSON, nullable=False),
        sa.Column("hostnames", sa.JSON, nullable=False),
        sa.Column("os", sa.String(120), nullable=True),
        sa.Column("vendor", sa.String(120), nullable=True),
        sa.Column("product", sa.String(120), nullable=True),
        sa.Column("virtual", sa.Boolean, nullable=False),
        sa.Column("log_sources", sa.JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "inv_systems",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column(
            "unit", sa.String(64), sa.ForeignKey("inv_units.code"), nullable=False, index=True
        ),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("dossier_status", sa.String(32), nullable=False),
        sa.Column("decision_number", sa.String(120), nullable=True),
        sa.Column("decision_date", sa.Date, nullable=True),
        sa.Column("regime", sa.String(16), nullable=False),
        sa.Column("state_secret", sa.Boolean, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "inv_system_assets",
        sa.Column(
            "system",
            sa.String(64),
            sa.ForeignKey("inv_systems.code", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "asset",
            sa.String(120),
            sa.ForeignKey("inv_assets.name", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        ),
    )
    op.create_table(
        "inv_public_ranges",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "system",
            sa.String(64),
            sa.ForeignKey("inv_systems.code", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("cidr", sa.String(64), nullable=False),
        sa.Column("ncsc_status", sa.String(16), nullable=False),
        sa.Column("registered_on", sa.Date, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("system", "cidr"),
    )
    op.create_table(
        "compliance_attestations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("control", sa.String(120), nullable=False, index=True),
        sa.Column(
            "system",
            sa.String(64),
            sa.ForeignKey("inv_systems.code", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "unit", sa.String(64), sa.ForeignKey("inv_units.code"), nullable=False, index=True
        ),
        sa.Column("document_ref", sa.String(300), nullable=False),
        sa.Column("attester", sa.String(200), nullable=False),
        sa.Column("attested_on", sa.Date, nullable=False),
        sa.Column("expires_on", sa.Date, nullable=True),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Index("ix_compliance_attestations_system_control", "system", "control"),
    )
    op.create_table(
        "compliance_status",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subject", sa.String(140), nullable=False, index=True),
        sa.Column("unit", sa.String(64), nullable=False, index=True),
        sa.Column("control", sa.String(120), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("catalogue_version", sa.String(64), nullable=False),
        sa.Column("evaluated_at", TS, nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.UniqueConstraint("subject", "control"),
    )
    op.create_table(
        "compliance_snapshots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False, index=True),
        sa.Column("evaluated_at", TS, nullable=False),
        sa.Column("passing", sa.Integer, nullable=False),
        sa.Column("failing", sa.Integer, nullable=False),
        sa.Column("unknown", sa.Integer, nullable=False),
        sa.Column("applicable", sa.Integer, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Index("ix_compliance_snapshots_system_at", "system", "evaluated_at"),
    )
    op.create_table(
        "compliance_records",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column(
            "system",
            sa.String(64),
            sa.ForeignKey("inv_systems.code", ondelete="CASCADE"),
            nullable=True,
            index=True,
        ),
        sa.Column(
            "unit", sa.String(64), sa.ForeignKey("inv_units.code"), nullable=False, index=True
        ),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Index("ix_compliance_records_kind_at", "kind", "occurred_at"),
    )


def downgrade() -> None:
    for table in (
        "compliance_records",
        "compliance_snapshots",
        "compliance_status",
        "compliance_attestations",
        "inv_public_ranges",
        "inv_system_assets",
        "inv_systems",
        "inv_assets",
        "inv_zones",
        "inv_links",
        "inv_sites",
        "inv_units",
    ):
        op.drop_table(table)
