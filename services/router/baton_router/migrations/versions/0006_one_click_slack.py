"""One-click links are used once: a row per used link, keyed by its token's id. Reps and
pools may name a Slack incoming webhook that receives their assignments.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "used_links",
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("assignment_id", postgresql.UUID(), nullable=False, index=True),
        sa.Column("rep_id", postgresql.UUID(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column(
            "used_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema="router",
    )
    op.add_column("reps", sa.Column("slack_webhook_url", sa.Text()), schema="router")
    op.add_column("pools", sa.Column("slack_webhook_url", sa.Text()), schema="router")


def downgrade() -> None:
    op.drop_column("pools", "slack_webhook_url", schema="router")
    op.drop_column("reps", "slack_webhook_url", schema="router")
    op.drop_table("used_links", schema="router")
