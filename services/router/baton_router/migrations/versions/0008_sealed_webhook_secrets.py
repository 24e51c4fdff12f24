"""Webhook signing secrets are sealed at rest: every plaintext ``whsec_`` secret of a rep
or nurture track is replaced by its sealed form (``secret_box.py``), with the key the
router passes in (``migrate(..., secret_box=...)``); downgrading opens them again.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("reps", "nurture_tracks")


def _box():  # type: ignore[no-untyped-def]
    box = op.get_context().config.attributes.get("secret_box")
    if box is None:
        raise RuntimeError(
            "webhook secrets need sealing: run the migration through the router "
            "(it passes BATON_ROUTER_SECRET_KEY's box)"
        )
    return box


def _rewrite(sealing: bool) -> None:
    connection = op.get_bind()
    for table in TABLES:
        clear = "webhook_secret LIKE 'whsec\\_%'"
        where = clear if sealing else f"NOT ({clear})"
        rows = connection.execute(
            sa.text(f"SELECT id, webhook_secret FROM router.{table} WHERE {where}")
        ).all()
        if not rows:
            continue
        box = _box()
        for row_id, stored in rows:
            value = box.seal(stored) if sealing else box.open(stored).current
            connection.execute(
                sa.text(f"UPDATE router.{table} SET webhook_secret = :v WHERE id = :i"),
                {"v": value, "i": row_id},
            )


def upgrade() -> None:
    _rewrite(sealing=True)


def downgrade() -> None:
    _rewrite(sealing=False)
