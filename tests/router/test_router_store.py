"""The router's stores against a real PostgreSQL: exactly-once routing, the queue, round-robin
fairness, and two routers (two engines) deciding concurrently."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from baton_router.signing import new_secret
from baton_router.store import Stores, open_stores
from baton_router.store.routing_writes import Routed
from baton_shared.clock import utcnow
from baton_shared.database import make_sessionmaker
from baton_shared.schemas import Stage, Transition

pytestmark = pytest.mark.integration

ASSIGNMENTS_TOPIC = "test.leads.assignments"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def transition(
    lead_id: str | None = None, to_stage: Stage = Stage.SQL, transition_id: str | None = None
) -> Transition:
    lead_id = lead_id or f"lead-{uuid.uuid4().hex[:8]}"
    return Transition(
        transition_id=transition_id or uuid.uuid4().hex,
        lead_id=lead_id,
        from_stage=Stage.MQL if to_stage == Stage.SQL else Stage.NEW,
        to_stage=to_stage,
        score=87.5,
        fit=40.0,
        engagement=47.5,
        reason="pricing page + demo request",
        express=False,
        trigger_event_id=f"evt-{uuid.uuid4().hex[:8]}",
        trigger_event="Demo Requested",
        occurred_at=T0,
        rules_version="test",
    )


@pytest.fixture
def store(engines: tuple[AsyncEngine, AsyncEngine]) -> Stores:
    return open_stores(make_sessionmaker(engines[0]), ASSIGNMENTS_TOPIC)


@pytest.fixture
def other_store(engines: tuple[AsyncEngine, AsyncEngine]) -> Stores:
    return open_stores(make_sessionmaker(engines[1]), ASSIGNMENTS_TOPIC)


async def create_reps(store: Stores, n: int) -> list[uuid.UUID]:
    """``n`` reps, created one after another (so created_at orders them)."""
    return [
        (await store.config.create_rep(f"Rep {i}", f"rep{i}@example.com",
                                       "http://127.0.0.1:9/hook", new_secret())).id
        for i in range(n)
    ]


async def route(store: Stores, transition: Transition, now: datetime) -> Routed:
    """One transition through the consumer's path: a batch of one."""
    [routed] = await store.routing.route_batch([transition], now)
    return routed


async def scalar(engine: AsyncEngine, sql: str, **params: object) -> object:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def rows(engine: AsyncEngine, sql: str, **params: object) -> list[tuple]:
    async with engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]


async def test_redelivered_transition_is_routed_once(store, engines):
    engine = engines[0]
    [rep_id] = await create_reps(store, 1)
    sql = transition()

    first = await route(store, sql, T0)
    rep_after_first = await store.config.get_rep(rep_id)
    second = await route(store, sql, T0 + timedelta(minutes=1))

    assert first.status == "assigned"
    assert first.assignment is not None
    assert first.assignment.rep_id == str(rep_id)
    assert first.assignment.transition_id == sql.transition_id
    assert second == Routed("duplicate")

    assert await rows(
        engine, "SELECT transition_id, rep_id::text FROM router.assignments"
    ) == [(sql.transition_id, str(rep_id))]
    outbox = await rows(engine, "SELECT kind, message_id, topic, key, status FROM router.outbox "
                                "ORDER BY kind")
    assignment_id = first.assignment.assignment_id
    assert outbox == [
        ("kafka", f"kafka_{assignment_id}", ASSIGNMENTS_TOPIC, sql.lead_id, "pending"),
        ("webhook", f"msg_{assignment_id}", None, None, "pending"),
    ]
    # The duplicate did not touch the rep's round-robin position either.
    rep = await store.config.get_rep(rep_id)
    assert rep is not None and rep_after_first is not None
    assert rep.last_assigned_at == rep_after_first.last_assigned_at == T0


async def test_sql_without_a_rep_is_queued_then_drained(store, engines):
    engine = engines[0]
    sql = transition()

    routed = await route(store, sql, T0)

    assert routed == Routed("queued")
    assert await scalar(engine, "SELECT count(*) FROM router.assignments") == 0
    assert await scalar(engine, "SELECT count(*) FROM router.outbox") == 0
    assert await scalar(
        engine, "SELECT status FROM router.routed_transitions WHERE transition_id = :t",
        t=sql.transition_id,
    ) == "queued"
    assert await store.routing.drain_queue(T0) == []  # still nobody to give it to

    [rep_id] = await create_reps(store, 1)
    drained = await store.routing.drain_queue(T0 + timedelta(seconds=5))

    assert [(a.transition_id, a.rep_id) for a in drained] == [(sql.transition_id, str(rep_id))]
    assert await scalar(
        engine, "SELECT status FROM router.routed_transitions WHERE transition_id = :t",
        t=sql.transition_id,
    ) == "assigned"
    assert await scalar(engine, "SELECT count(*) FROM router.assignments") == 1
    assert await scalar(engine, "SELECT count(*) FROM router.outbox") == 2
    assert await store.routing.drain_queue(T0 + timedelta(seconds=6)) == []  # drained once only
    assert await scalar(engine, "SELECT count(*) FROM router.assignments") == 1


async def test_round_robin_gives_three_reps_three_each(store):
    reps = await create_reps(store, 3)

    chosen = []
    for i in range(9):
        routed = await route(store, transition(), T0 + timedelta(seconds=i))
        assert routed.assignment is not None
        chosen.append(uuid.UUID(routed.assignment.rep_id))

    assert Counter(chosen) == {rep: 3 for rep in reps}
    # Strict rotation: every rep once, then the same order again.
    assert sorted(chosen[:3]) == sorted(reps)
    assert chosen == chosen[:3] * 3


async def test_mql_is_recorded_but_not_assigned(store, engines):
    engine = engines[0]
    [rep_id] = await create_reps(store, 1)
    mql = transition(to_stage=Stage.MQL)

    routed = await route(store, mql, T0)

    assert routed == Routed("ignored")
    assert await rows(
        engine, "SELECT transition_id, to_stage, status FROM router.routed_transitions"
    ) == [(mql.transition_id, "mql", "ignored")]
    assert await scalar(engine, "SELECT count(*) FROM router.assignments") == 0
    assert await scalar(engine, "SELECT count(*) FROM router.outbox") == 0
    assert await store.routing.drain_queue(T0) == []
    rep = await store.config.get_rep(rep_id)
    assert rep is not None and rep.last_assigned_at is None
    # Re-delivered, it is a duplicate, not a second record.
    assert await route(store, mql, T0) == Routed("duplicate")


async def test_two_routers_concurrently_assign_distinct_reps(store, other_store, engines):
    engine = engines[0]
    reps = await create_reps(store, 2)

    # Rounds of two concurrent decisions, one per router: each round uses both reps.
    per_round = []
    for _ in range(5):
        a, b = await asyncio.gather(
            route(store, transition(), utcnow()),
            route(other_store, transition(), utcnow()),
        )
        assert a.assignment is not None and b.assignment is not None
        per_round.append({a.assignment.rep_id, b.assignment.rep_id})
    assert per_round == [{str(r) for r in reps}] * 5

    # Many decisions at once across both routers: every one assigned, one assignment
    # per transition. (Not an even split: see the clock-skew test below.)
    burst = [transition() for _ in range(12)]
    results = await asyncio.gather(*(
        route(store if i % 2 else other_store, t, utcnow())
        for i, t in enumerate(burst)
    ))
    assert [r.status for r in results] == ["assigned"] * 12
    assert await scalar(
        engine, "SELECT count(*) FROM router.assignments WHERE transition_id = ANY(:ids)",
        ids=[t.transition_id for t in burst],
    ) == 12
    assert await scalar(
        engine, "SELECT count(DISTINCT transition_id) FROM router.assignments"
    ) == await scalar(engine, "SELECT count(*) FROM router.assignments") == 22


async def test_one_transition_through_two_routers_at_once_is_assigned_once(
    store, other_store, engines
):
    engine = engines[0]
    await create_reps(store, 3)

    for _ in range(5):
        sql = transition()
        now = utcnow()
        results = await asyncio.gather(
            route(store, sql, now), route(other_store, sql, now)
        )
        assert sorted(r.status for r in results) == ["assigned", "duplicate"]
        assert await scalar(
            engine, "SELECT count(*) FROM router.assignments WHERE transition_id = :t",
            t=sql.transition_id,
        ) == 1
        [assigned] = [r.assignment for r in results if r.assignment]
        assert await scalar(
            engine, "SELECT count(*) FROM router.outbox WHERE message_id IN (:w, :k)",
            w=f"msg_{assigned.assignment_id}", k=f"kafka_{assigned.assignment_id}",
        ) == 2
    assert await scalar(engine, "SELECT count(*) FROM router.outbox") == 10


async def test_round_robin_stays_fair_when_router_clocks_disagree(store, other_store):
    """Turns come from one database sequence, not from the routers' clocks."""
    reps = await create_reps(store, 3)
    skew = timedelta(seconds=2)  # the second router's clock is 2 s behind

    chosen = []
    for i in range(9):
        now = T0 + timedelta(seconds=i)
        router, at = (store, now) if i % 2 == 0 else (other_store, now - skew)
        routed = await route(router, transition(), at)
        assert routed.assignment is not None
        chosen.append(uuid.UUID(routed.assignment.rep_id))

    assert Counter(chosen) == {rep: 3 for rep in reps}
    assert chosen == chosen[:3] * 3
