"""Failed console logins, shared by every API process (soc_api.access_login.DbLoginLimiter).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("at", sa.Float, nullable=False),  # Unix time
        sa.Index("ix_login_failures_key_at", "key", "at"),
    )


def downgrade() -> None:
    op.drop_table("login_failures")
