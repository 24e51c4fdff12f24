"""Versioned policies, warnings, system delay, first touches; the sweep's due index.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    add: list[sa.Column] = [  # type: ignore[type-arg]
        sa.Column("team", sa.String(64)),
        sa.Column("stage", sa.String(16), nullable=False, server_default="sql"),
        sa.Column("policy_version", sa.String(128)),
        sa.Column("calendar", sa.String(64)),
        sa.Column("window_seconds", sa.Float()),
        sa.Column("warn_ats", sa.ARRAY(TS), nullable=False, server_default="{}"),
        sa.Column("warn_fractions", sa.ARRAY(sa.Float()), nullable=False, server_default="{}"),
        sa.Column("warnings_sent", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_fire_at", TS),
        sa.Column("first_touch_at", TS),
        sa.Column("counted_seconds", sa.Float()),
        sa.Column("system_delay_seconds", sa.Float()),
        sa.Column("assign_target_seconds", sa.Float()),
    ]
    for column in add:
        op.add_column("clocks", column, schema="sla")
    op.drop_index("ix_clocks_open_deadline", table_name="clocks", schema="sla")
    # The sweep: open clocks in due order; a partial index stays as small as the open set.
    op.create_index(
        "ix_clocks_open_next_fire",
        "clocks",
        ["next_fire_at"],
        schema="sla",
        postgresql_where=sa.text("status = 'open'"),
    )
    # Reports over a window of assignments.
    op.create_index("ix_clocks_started_at", "clocks", ["started_at"], schema="sla")
    # Backfill after the indexes exist: an index built over freshly HOT-updated rows is
    # unusable to transactions older than its own (pg_index.indcheckxmin).
    op.execute(
        "UPDATE sla.clocks SET "
        "next_fire_at = CASE WHEN status = 'open' THEN deadline_at END, "
        "system_delay_seconds = GREATEST(0, EXTRACT(EPOCH FROM started_at - qualified_at)), "
        "first_touch_at = CASE WHEN status = 'met' THEN closed_at END"
    )
    op.create_table(
        "touches",
        sa.Column("activity_id", sa.String(128), primary_key=True),
        sa.Column("lead_id", sa.String(256), nullable=False),
        sa.Column("rep_id", sa.String(64)),
        sa.Column("assignment_id", sa.String(64)),
        sa.Column("occurred_at", TS, nullable=False),
        schema="sla",
    )
    op.create_index("ix_touches_lead_occurred", "touches", ["lead_id", "occurred_at"], schema="sla")


def downgrade() -> None:
    op.drop_table("touches", schema="sla")
    op.drop_index("ix_clocks_started_at", table_name="clocks", schema="sla")
    op.drop_index("ix_clocks_open_next_fire", table_name="clocks", schema="sla")
    op.create_index(
        "ix_clocks_open_deadline",
        "clocks",
        ["deadline_at"],
        schema="sla",
        postgresql_where=sa.text("status = 'open'"),
    )
    for name in (
        "assign_target_seconds",
        "system_delay_seconds",
        "counted_seconds",
        "first_touch_at",
        "next_fire_at",
        "warnings_sent",
        "warn_fractions",
        "warn_ats",
        "window_seconds",
        "calendar",
        "policy_version",
        "stage",
        "team",
    ):
        op.drop_column("clocks", name, schema="sla")
