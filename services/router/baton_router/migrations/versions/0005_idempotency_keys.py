"""The first response to each ``Idempotency-Key`` request, so a retry gets it again
instead of creating or recording a second time. Keyed by (caller, key); rows expire.

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
    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sa.String(80), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("response_body", sa.LargeBinary()),
        sa.Column("media_type", sa.String(100)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema="router",
    )
    op.create_index("idempotency_keys_expiry", "idempotency_keys", ["expires_at"], schema="router")


def downgrade() -> None:
    op.drop_index("idempotency_keys_expiry", table_name="idempotency_keys", schema="router")
    op.drop_table("idempotency_keys", schema="router")
