"""Rule settings: per-rule enable/disable and false-positive exceptions changed through the API.

Laid over the configuration's `rules_policy` (a row wins); a NULL column leaves the
configuration's choice for that rule.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_settings",
        sa.Column("rule_id", sa.String(255), primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=True),
        sa.Column("exceptions", sa.JSON, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(120), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rule_settings")
