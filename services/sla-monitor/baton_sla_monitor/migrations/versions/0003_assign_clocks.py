"""Assign clocks (qualifying transition → assignment) and MQL clocks opened by a
transition: a clock says what it measures, and may have no rep or assignment yet.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "clocks",
        sa.Column("measure", sa.String(16), nullable=False, server_default="first_touch"),
        schema="sla",
    )
    op.add_column("clocks", sa.Column("transition_id", sa.String(128)), schema="sla")
    op.alter_column("clocks", "assignment_id", nullable=True, schema="sla")
    op.alter_column("clocks", "rep_id", nullable=True, schema="sla")
    # An assignment stops the assign clock of its transition; a late transition finds
    # the assignments that already came for it.
    op.create_index("ix_clocks_transition", "clocks", ["transition_id"], schema="sla")


def downgrade() -> None:
    op.execute("DELETE FROM sla.clocks WHERE assignment_id IS NULL OR rep_id IS NULL")
    op.drop_index("ix_clocks_transition", table_name="clocks", schema="sla")
    op.alter_column("clocks", "rep_id", nullable=False, schema="sla")
    op.alter_column("clocks", "assignment_id", nullable=False, schema="sla")
    op.drop_column("clocks", "transition_id", schema="sla")
    op.drop_column("clocks", "measure", schema="sla")
