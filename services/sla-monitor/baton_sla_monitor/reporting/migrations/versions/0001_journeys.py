"""Conversion reporting: one journey row per lead.

Revision ID: r0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
TEXT_COLUMNS = {
    "rejected_code": 64,
    "rejected_id": 128,
    "lost_code": 64,
    "lost_id": 128,
    "attributed_id": 128,
    "rules_version": 128,
    "industry": 128,
    "segment": 64,
    "touch_id": 256,
    "source": 256,
    "campaign": 256,
    "assignment_id": 64,
    "pool": 64,
    "rep_id": 64,
}
TIME_COLUMNS = (
    "sql_at", "accepted_at", "rejected_at", "lost_at", "won_at", "attributed_at", "touch_at",
    "assigned_at",
)  # fmt: skip


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS reporting")
    op.create_table(
        "journeys",
        sa.Column("lead_id", sa.String(256), primary_key=True),
        sa.Column("merged_into", sa.String(256)),
        sa.Column("entered_at", TS, index=True),
        sa.Column("mql_at", TS, index=True),
        *(sa.Column(name, TS) for name in TIME_COLUMNS),
        *(sa.Column(name, sa.String(width)) for name, width in TEXT_COLUMNS.items()),
        sa.Column("contacted_ats", sa.ARRAY(TS), nullable=False, server_default="{}"),
        sa.Column("met_clocks", sa.ARRAY(sa.String(64)), nullable=False, server_default="{}"),
        sa.Column("breached_clocks", sa.ARRAY(sa.String(64)), nullable=False, server_default="{}"),
        schema="reporting",
    )


def downgrade() -> None:
    op.drop_table("journeys", schema="reporting")
