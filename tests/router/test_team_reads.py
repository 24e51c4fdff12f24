"""A routed batch reads the team in proportion to its leads and their pools, not to the
number of reps, pools or account owners: the team's configuration stays in memory while
its version holds, and a change to it is seen by the very next batch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from baton_router.store import Stores, open_stores
from baton_shared.database import make_sessionmaker
from baton_shared.schemas import Stage, Transition

pytestmark = pytest.mark.integration

REPS, POOLS, OWNERS = 400, 40, 2000  # ten members a pool
NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
TEAM_TABLES = ["reps", "pools", "pool_members", "routing_rules", "accounts"]

SEED = [
    "INSERT INTO router.reps (id, name, email, webhook_url, webhook_secret, status, "
    "timezone, out_of_office, weight, skills, open_leads) "
    "SELECT gen_random_uuid(), 'Rep ' || g, 'rep' || g || '@example.com', "
    "'http://127.0.0.1:9/hook', 'secret', 'online', 'UTC', '[]', 1, '{}', 0 "
    f"FROM generate_series(1, {REPS}) AS g",
    "INSERT INTO router.pools (id, name, strategy, express, escalation, max_reassignments) "
    "SELECT gen_random_uuid(), 'pool-' || g, 'round_robin', false, 'next_rep', 2 "
    f"FROM generate_series(0, {POOLS - 1}) AS g",
    "INSERT INTO router.pool_members (pool_id, rep_id, wrr_current) SELECT p.id, r.id, 0 "
    "FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM router.reps) AS r "
    "JOIN (SELECT id, CAST(substr(name, 6) AS int) AS n FROM router.pools) AS p "
    f"ON p.n = r.n % {POOLS}",
    "INSERT INTO router.routing_rules (id, position, name, conditions, pool_id, enabled) "
    "SELECT gen_random_uuid(), CAST(substr(name, 6) AS int), name, jsonb_build_array("
    "jsonb_build_object('field', 'traits.team', 'op', 'eq', 'value', name)), id, true "
    "FROM router.pools",
    "INSERT INTO router.accounts (domain, rep_id) SELECT 'acct' || g || '.example', r.id "
    f"FROM generate_series(0, {OWNERS - 1}) AS g JOIN (SELECT id, row_number() OVER "
    f"(ORDER BY id) - 1 AS n FROM router.reps) AS r ON r.n = g % {REPS}",
]


def sql(team: str, domain: str | None = None) -> Transition:
    n = uuid.uuid4().hex[:8]
    return Transition(
        transition_id=f"t-{n}",
        lead_id=f"lead-{n}",
        from_stage=Stage.MQL,
        to_stage=Stage.SQL,
        score=100,
        fit=40,
        engagement=60,
        reason="r",
        trigger_event_id=f"e-{n}",
        occurred_at=NOW,
        rules_version="test",
        email=f"lead@{domain}" if domain else None,
        traits={"team": team},
    )


@pytest.fixture
async def store(engines: tuple[AsyncEngine, AsyncEngine]) -> Stores:
    async with engines[0].begin() as conn:
        for statement in SEED:
            await conn.execute(text(statement))
        await conn.execute(text("ANALYZE"))
    return open_stores(make_sessionmaker(engines[0]), "test.leads.assignments")


async def team_rows_read(store: Stores, batch: list[Transition]) -> int:
    """Rows read from the team's tables while deciding and writing ``batch`` (the
    backend's table statistics not yet flushed, before and after, in one transaction)."""
    read = text(
        "SELECT sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)) "
        "FROM pg_stat_xact_user_tables WHERE schemaname = 'router' AND relname = ANY(:tables)"
    )
    async with store.routing._sessions.begin() as session:
        await session.execute(
            text(
                "INSERT INTO router.routed_transitions (transition_id, lead_id, to_stage, "
                "status, payload) VALUES (:tid, :lead, 'sql', 'queued', CAST(:payload AS jsonb))"
            ),
            [
                {"tid": t.transition_id, "lead": t.lead_id, "payload": t.model_dump_json()}
                for t in batch
            ],
        )
        # At this size a sequential scan is cheaper than an index: ask for the plans a
        # team of thousands gets, which a missing index cannot give.
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        before = (await session.execute(read, {"tables": TEAM_TABLES})).scalar_one()
        assigned = await store.routing.assigner.assign(session, batch, NOW)
        assert len(assigned) == len(batch)
        after = (await session.execute(read, {"tables": TEAM_TABLES})).scalar_one()
    return int(after - before)


async def test_a_batch_reads_its_pools_and_owners_not_the_whole_team(store: Stores) -> None:
    await store.routing.route_batch([sql("pool-1")], NOW)  # the configuration, once
    batch = [sql("pool-3"), sql("pool-7", "acct12.example"), sql("pool-3", "acct99.example")]
    read = await team_rows_read(store, batch)
    # Two pools of ten members (and those reps), two owners, the reps' and members'
    # counter updates: a few dozen rows of a team of 400 reps, 40 pools, 2,000 owners.
    assert read <= 100, read


async def test_a_change_to_the_team_reaches_the_next_batch(
    store: Stores, engines: tuple[AsyncEngine, AsyncEngine]
) -> None:
    [first] = await store.routing.route_batch([sql("pool-5")], NOW)
    assert first.assignment is not None
    async with engines[0].begin() as conn:
        members = [
            r[0]
            for r in await conn.execute(
                text(
                    "SELECT m.rep_id FROM router.pool_members AS m JOIN router.pools AS p "
                    "ON p.id = m.pool_id WHERE p.name = 'pool-5' ORDER BY m.rep_id"
                )
            )
        ]
    stays = members[0]
    for rep_id in members[1:]:
        await store.config.update_rep(rep_id, {"status": "away"})
    for _ in range(3):
        [routed] = await store.routing.route_batch([sql("pool-5")], NOW)
        assert routed.assignment is not None
        assert routed.assignment.rep_id == str(stays)
