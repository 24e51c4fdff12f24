"""The team's version: one number that changes with every change routing decides on
(reps' availability, capacity, skills, webhooks; pools; members; rules), so a router
keeps the team in memory and reads per batch only the counters it needs.

Statement triggers bump it in the changing transaction. Routing's own writes (a rep's
``last_turn``, ``open_leads``, ``last_assigned_at``; a member's ``wrr_current``) leave
it alone: those counters are read fresh for every batch. It starts at a random value,
so a recreated schema never matches a version a router has cached.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Every column of router.reps routing reads, except the counters routing maintains.
REP_COLUMNS = (
    "status, timezone, working_hours, out_of_office, capacity, weight, skills, "
    "webhook_url, webhook_secret, webhook_disabled_at, slack_webhook_url, archived_at"
)
WATCHED = {
    "reps": f"INSERT OR DELETE OR TRUNCATE OR UPDATE OF {REP_COLUMNS}",
    "pools": "INSERT OR DELETE OR TRUNCATE OR UPDATE",
    "pool_members": "INSERT OR DELETE OR TRUNCATE OR UPDATE OF pool_id, rep_id",
    "routing_rules": "INSERT OR DELETE OR TRUNCATE OR UPDATE",
}


def upgrade() -> None:
    # Idempotent: a database stamped back to an older revision runs it again.
    op.execute(
        "CREATE TABLE IF NOT EXISTS router.team_version ("
        "one boolean PRIMARY KEY DEFAULT true CHECK (one), version bigint NOT NULL)"
    )
    op.execute(
        "INSERT INTO router.team_version (version) "
        "VALUES (CAST(floor(random() * 1e15) AS bigint)) ON CONFLICT DO NOTHING"
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION router.bump_team_version() RETURNS trigger "
        "LANGUAGE plpgsql AS "
        "$$ BEGIN UPDATE router.team_version SET version = version + 1; RETURN NULL; END $$"
    )
    for table, events in WATCHED.items():
        op.execute(
            f"CREATE OR REPLACE TRIGGER {table}_team_version AFTER {events} ON router.{table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION router.bump_team_version()"
        )


def downgrade() -> None:
    for table in WATCHED:
        op.execute(f"DROP TRIGGER {table}_team_version ON router.{table}")
    op.execute("DROP FUNCTION router.bump_team_version()")
    op.execute("DROP TABLE router.team_version")
