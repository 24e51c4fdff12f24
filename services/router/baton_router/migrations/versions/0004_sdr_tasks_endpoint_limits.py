"""SDR tasks on MQLs (a nurture track may name an SDR pool; assignments carry the lead's
stage), and an index for counting deliveries in flight per endpoint across routers.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "nurture_tracks",
        sa.Column("sdr_pool_id", UUID(), sa.ForeignKey("router.pools.id", ondelete="SET NULL")),
        schema="router",
    )
    op.add_column(
        "assignments",
        sa.Column("stage", sa.String(8), nullable=False, server_default="sql"),
        schema="router",
    )
    # The claim query counts leased rows per endpoint; pending rows are few, delivered
    # ones many: index only the pending ones.
    op.create_index(
        "outbox_pending_due",
        "outbox",
        ["next_attempt_at"],
        schema="router",
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("outbox_pending_due", table_name="outbox", schema="router")
    op.drop_column("assignments", "stage", schema="router")
    op.drop_column("nurture_tracks", "sdr_pool_id", schema="router")
