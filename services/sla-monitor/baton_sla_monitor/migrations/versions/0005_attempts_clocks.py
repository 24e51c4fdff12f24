"""Attempts clocks: an assignment may open a second clock (``measure`` attempts) that
counts its contact attempts, so an assignment id is unique per measure.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clocks", sa.Column("attempts_required", sa.Integer()), schema="sla")
    op.add_column("clocks", sa.Column("attempts_made", sa.Integer()), schema="sla")
    op.drop_constraint("clocks_assignment_id_key", "clocks", schema="sla", type_="unique")
    op.create_index(
        "uq_clocks_assignment_measure",
        "clocks",
        ["assignment_id", "measure"],
        unique=True,
        schema="sla",
    )


def downgrade() -> None:
    op.execute("DELETE FROM sla.clocks WHERE measure = 'attempts'")
    op.drop_index("uq_clocks_assignment_measure", table_name="clocks", schema="sla")
    op.create_unique_constraint(
        "clocks_assignment_id_key", "clocks", ["assignment_id"], schema="sla"
    )
    op.drop_column("clocks", "attempts_made", schema="sla")
    op.drop_column("clocks", "attempts_required", schema="sla")
