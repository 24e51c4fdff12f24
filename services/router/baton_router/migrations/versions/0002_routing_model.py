"""Routing model: rep availability, capacity, weight, skills and tokens; pools, rules,
accounts, nurture tracks; assignment status and turns; outbox targets that are not reps.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
JSONB = postgresql.JSONB()
S = "router"


def upgrade() -> None:
    op.execute("CREATE SEQUENCE router.assignment_turn")
    for column in (
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("working_hours", JSONB),
        sa.Column("out_of_office", JSONB, nullable=False, server_default="[]"),
        sa.Column("capacity", sa.Integer()),
        sa.Column("weight", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("skills", JSONB, nullable=False, server_default="{}"),
        sa.Column("last_turn", sa.BigInteger()),
        sa.Column("token_hash", sa.String(64), unique=True),
        sa.Column("archived_at", TS),
    ):
        op.add_column("reps", column, schema=S)
    op.create_table(
        "pools",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("strategy", sa.String(16), nullable=False, server_default="round_robin"),
        sa.Column("express", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("escalation", sa.String(16), nullable=False, server_default="next_rep"),
        sa.Column(
            "manager_rep_id",
            postgresql.UUID(),
            sa.ForeignKey("router.reps.id", ondelete="SET NULL"),
        ),
        sa.Column("max_reassignments", sa.Integer(), nullable=False, server_default="2"),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_table(
        "pool_members",
        sa.Column(
            "pool_id",
            postgresql.UUID(),
            sa.ForeignKey("router.pools.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "rep_id",
            postgresql.UUID(),
            sa.ForeignKey("router.reps.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("wrr_current", sa.Float(), nullable=False, server_default="0"),
        schema=S,
    )
    op.create_table(
        "routing_rules",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("conditions", JSONB, nullable=False),
        sa.Column(
            "pool_id",
            postgresql.UUID(),
            sa.ForeignKey("router.pools.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_table(
        "accounts",
        sa.Column("domain", sa.String(253), primary_key=True),
        sa.Column(
            "rep_id",
            postgresql.UUID(),
            sa.ForeignKey("router.reps.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    op.create_table(
        "nurture_tracks",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("conditions", JSONB, nullable=False, server_default="[]"),
        sa.Column("webhook_url", sa.Text(), nullable=False),
        sa.Column("webhook_secret", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        schema=S,
    )
    for column in (
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("closed_at", TS),
        sa.Column("pool_id", postgresql.UUID()),
        sa.Column("turn", sa.BigInteger()),
        sa.Column("reassignments", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("previous_assignment_id", postgresql.UUID()),
        sa.Column("sla_due_at", TS),
    ):
        op.add_column("assignments", column, schema=S)
    # A transition is assigned once; re-assignments after a breach point back at it.
    op.drop_constraint("assignments_transition_id_key", "assignments", schema=S)
    op.create_index(
        "ux_assignments_first_per_transition",
        "assignments",
        ["transition_id"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("previous_assignment_id IS NULL"),
    )
    op.create_index(
        "ix_assignments_open_by_rep",
        "assignments",
        ["rep_id"],
        schema=S,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.add_column("outbox", sa.Column("target_url", sa.Text()), schema=S)
    op.add_column("outbox", sa.Column("track_id", postgresql.UUID()), schema=S)
    op.create_index(
        "ix_routed_transitions_queued",
        "routed_transitions",
        ["received_at"],
        schema=S,
        postgresql_where=sa.text("status = 'queued'"),
    )


def downgrade() -> None:
    op.drop_index("ix_routed_transitions_queued", "routed_transitions", schema=S)
    op.drop_column("outbox", "track_id", schema=S)
    op.drop_column("outbox", "target_url", schema=S)
    op.drop_index("ix_assignments_open_by_rep", "assignments", schema=S)
    op.drop_index("ux_assignments_first_per_transition", "assignments", schema=S)
    op.create_unique_constraint(
        "assignments_transition_id_key", "assignments", ["transition_id"], schema=S
    )
    for name in (
        "sla_due_at",
        "previous_assignment_id",
        "reassignments",
        "turn",
        "pool_id",
        "closed_at",
        "status",
    ):
        op.drop_column("assignments", name, schema=S)
    for table in ("nurture_tracks", "accounts", "routing_rules", "pool_members", "pools"):
        op.drop_table(table, schema=S)
    for name in (
        "archived_at",
        "token_hash",
        "last_turn",
        "skills",
        "weight",
        "capacity",
        "out_of_office",
        "working_hours",
        "timezone",
    ):
        op.drop_column("reps", name, schema=S)
    op.execute("DROP SEQUENCE router.assignment_turn")
