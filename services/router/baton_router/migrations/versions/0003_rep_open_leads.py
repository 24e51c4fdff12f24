"""A running count of each rep's open leads, kept in the routing transaction, so a
routing decision reads it instead of counting assignments.

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
        "reps",
        sa.Column("open_leads", sa.Integer(), nullable=False, server_default="0"),
        schema="router",
    )
    op.execute(
        "UPDATE router.reps AS r SET open_leads = c.n FROM ("
        "SELECT rep_id, count(*) AS n FROM router.assignments WHERE status = 'open' "
        "GROUP BY rep_id) AS c WHERE r.id = c.rep_id"
    )


def downgrade() -> None:
    op.drop_column("reps", "open_leads", schema="router")
