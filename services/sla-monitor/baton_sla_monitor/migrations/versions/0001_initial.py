"""Speed-to-lead clocks.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS sla")
    op.create_table(
        "clocks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("assignment_id", sa.String(64), nullable=False, unique=True),
        sa.Column("lead_id", sa.String(256), nullable=False, index=True),
        sa.Column("rep_id", sa.String(64), nullable=False),
        sa.Column("express", sa.Boolean(), nullable=False),
        sa.Column("qualified_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("deadline_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("closed_at", TS),
        sa.Column("elapsed_seconds", sa.Float()),
        schema="sla",
    )
    op.create_index(
        "ix_clocks_open_deadline",
        "clocks",
        ["deadline_at"],
        schema="sla",
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_table("clocks", schema="sla")
