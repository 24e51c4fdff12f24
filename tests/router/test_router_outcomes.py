"""The router follows a rep's outcome as the scorer decided it, against real PostgreSQL:
a customer leaves the funnel (capacity freed, queue and nurture stopped), a re-routed
SQL goes to another rep."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from baton_router.signing import new_secret
from baton_shared.schemas import ReasonKind, Stage
from tests.router.test_router_store import T0, create_reps, route, rows, store, transition

pytestmark = pytest.mark.integration
__all__ = ["store"]  # the fixture, imported so these tests get it


async def test_a_customer_frees_the_rep_and_stops_its_nurture(store, engines) -> None:
    engine = engines[0]
    [rep_id] = await create_reps(store, 1)
    await store.config.create_track(
        {"name": "all", "position": 0, "conditions": [], "webhook_secret": new_secret(),
         "webhook_url": "http://127.0.0.1:9/track"}
    )
    mql = transition(to_stage=Stage.MQL)
    assert (await route(store, mql, T0)).status == "nurtured"
    sql = transition(mql.lead_id)
    assert (await route(store, sql, T0 + timedelta(hours=1))).status == "assigned"

    won = transition(mql.lead_id, to_stage=Stage.CUSTOMER).model_copy(
        update={"from_stage": Stage.SQL, "reason_kind": ReasonKind.WON}
    )
    routed = await route(store, won, T0 + timedelta(days=2))

    assert routed.status == "released"
    assert await rows(engine, "SELECT status FROM router.assignments") == [("customer",)]
    assert await rows(
        engine, "SELECT open_leads FROM router.reps WHERE id = :id", id=rep_id
    ) == [(0,)]
    told = await rows(
        engine,
        "SELECT payload->>'type', payload->'data'->>'lead_id' FROM router.outbox "
        "WHERE track_id IS NOT NULL ORDER BY message_id",
    )
    assert told == [("lead.customer", mql.lead_id), ("lead.nurture", mql.lead_id)]
    # Nothing routes the customer again: a late SQL of the same lead is a new transition,
    # but the scorer never emits one (tests/scorer/test_outcomes.py).


async def test_a_rerouted_sql_goes_to_another_rep_or_waits(store, engines) -> None:
    engine = engines[0]
    await create_reps(store, 2)
    sql = transition()
    first = await route(store, sql, T0)
    assert first.assignment is not None
    had_it = first.assignment.rep_id
    reroute = transition(sql.lead_id).model_copy(
        update={"from_stage": Stage.SQL, "reason_kind": ReasonKind.REROUTE}
    )

    again = await route(store, reroute, T0 + timedelta(hours=1))

    assert again.status == "assigned" and again.assignment is not None
    assert again.assignment.rep_id != had_it
    assert again.assignment.previous_rep_id == had_it
    assert await rows(
        engine, "SELECT status FROM router.assignments ORDER BY assigned_at"
    ) == [("rejected",), ("open",)]
    # Rejected again while the only other rep (who had it first) is offline: it waits.
    await store.config.update_rep(uuid.UUID(had_it), {"status": "offline"})
    third = transition(sql.lead_id).model_copy(
        update={"from_stage": Stage.SQL, "reason_kind": ReasonKind.REROUTE}
    )
    assert (await route(store, third, T0 + timedelta(hours=2))).status == "queued"
