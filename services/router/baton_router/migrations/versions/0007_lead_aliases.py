"""Merged leads: a lead merged into another is known by its survivor from then on.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
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
        schema="router",
    )


def downgrade() -> None:
    op.drop_table("lead_aliases", schema="router")
