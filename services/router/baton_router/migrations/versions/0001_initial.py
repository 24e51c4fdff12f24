"""Reps, consumed transitions, assignments and the outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS router")
    op.create_table(
        "reps",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=False),
        sa.Column("webhook_secret", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="online"),
        sa.Column("webhook_disabled_at", TS),
        sa.Column("last_assigned_at", TS),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        schema="router",
    )
    op.create_table(
        "routed_transitions",
        sa.Column("transition_id", sa.String(64), primary_key=True),
        sa.Column("lead_id", sa.String(256), nullable=False, index=True),
        sa.Column("to_stage", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("received_at", TS, nullable=False, server_default=sa.func.now()),
        schema="router",
    )
    op.create_table(
        "assignments",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column(
            "transition_id",
            sa.String(64),
            sa.ForeignKey("router.routed_transitions.transition_id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("lead_id", sa.String(256), nullable=False, index=True),
        sa.Column(
            "rep_id", postgresql.UUID(), sa.ForeignKey("router.reps.id"), nullable=False, index=True
        ),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("express", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("qualified_at", TS, nullable=False),
        sa.Column("assigned_at", TS, nullable=False),
        schema="router",
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(80), nullable=False, unique=True),
        sa.Column("rep_id", postgresql.UUID(), sa.ForeignKey("router.reps.id")),
        sa.Column("topic", sa.String(255)),
        sa.Column("key", sa.String(256)),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending", index=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("lease_until", TS),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("delivered_at", TS),
        schema="router",
    )
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["next_attempt_at"],
        schema="router",
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_table("outbox", schema="router")
    op.drop_table("assignments", schema="router")
    op.drop_table("routed_transitions", schema="router")
    op.drop_table("reps", schema="router")
