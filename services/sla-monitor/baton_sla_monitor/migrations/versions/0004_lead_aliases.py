"""Merged leads: a lead merged into another is known by its survivor from then on.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lead_aliases",
        sa.Column("merged_id", sa.String(256), primary_key=True),
        sa.Column("survivor_id", sa.String(256), nullable=False, index=True),
        sa.Column(
            "merged_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema="sla",
    )


def downgrade() -> None:
    op.drop_table("lead_aliases", schema="sla")
