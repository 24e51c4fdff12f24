"""A lead merged into another: its clocks move to the survivor (or are cancelled when the
survivor has its own), ``contacted`` by the old id stops the survivor's clock, and no
clock breaches for an id that no longer exists. Real PostgreSQL (the store), and the
real broker for the monitor's ``leads.merges`` consumer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from baton_shared.schemas import LeadMerged
from tests.sla_monitor import test_clock_store as base
from tests.sla_monitor.test_clock_store import (
    T0,
    assigned,
    clocks_of,
    contacted,
    of_measure,
    transition,
)
from tests.sla_monitor.test_sla_service import assignment, clock_id, publish, sla_event
from tests.support.kafka import wait_committed

pytestmark = pytest.mark.integration

store = base.store


def merge(merged: str, survivor: str) -> LeadMerged:
    return LeadMerged(
        merge_id=uuid.uuid4().hex, merged_id=merged, survivor_id=survivor, occurred_at=T0
    )


async def test_the_merged_leads_clock_moves_and_contacted_by_its_old_id_stops_it(store) -> None:
    clocks, events = store
    sql = transition("lead-x", 0)
    rep_clock = assigned(sql, 0.5)
    await clocks.apply(transitions=[sql], assignments=[rep_clock])

    await clocks.apply(merges=[merge("lead-x", "lead-y")])
    await clocks.apply(merges=[merge("lead-x", "lead-y")])  # re-delivered: nothing more

    assert await clocks_of(clocks, "lead-x") == []
    moved = {c.measure: (c.status, c.assignment_id) for c in await clocks_of(clocks, "lead-y")}
    assert moved == {"assign": ("met", None), "first_touch": ("open", rep_clock.assignment_id)}
    touched = await clocks.contacted(contacted("lead-x", 3))
    assert touched is not None and (touched.lead_id, touched.status) == ("lead-y", "met")
    assert await clocks.fire_due(T0 + timedelta(days=3)) == []
    assert ("first_touch", "breached") not in of_measure(events, "lead-y")


async def test_the_survivors_own_clock_stays_and_the_merged_ones_are_cancelled(store) -> None:
    clocks, events = store
    x_sql, y_sql, waiting = transition("lead-p", 0), transition("lead-q", 0), transition("w", 0)
    await clocks.apply(
        transitions=[x_sql, y_sql, waiting],
        assignments=[assigned(x_sql, 0.5), assigned(y_sql, 1)],
    )

    await clocks.apply(merges=[merge("lead-p", "lead-q"), merge("w", "lead-q")])
    late = transition("lead-p", 5)  # emitted before the merge, consumed after it
    await clocks.apply(transitions=[late])

    statuses = sorted((c.measure, c.status) for c in await clocks_of(clocks, "lead-q"))
    assert statuses == [
        ("assign", "cancelled"),  # w's: nobody will assign a lead merged away
        ("assign", "met"),
        ("assign", "met"),
        ("first_touch", "cancelled"),  # lead-p's rep clock
        ("first_touch", "open"),  # lead-q's own
    ]
    assert of_measure(events, "lead-p")[-1] == ("first_touch", "cancelled")
    assert of_measure(events, "w")[-1] == ("assign", "cancelled")
    assert [f.status.value for f in await clocks.fire_due(T0 + timedelta(days=3))] == ["breached"]
    assert of_measure(events, "lead-q")[-1] == ("first_touch", "breached")  # its own only


async def test_the_monitor_follows_merges_on_the_broker(
    start_sla, producer, topics, kafka_bootstrap
) -> None:
    await start_sla()
    a = assignment(datetime.now(UTC), lead_id=f"x-{uuid.uuid4().hex[:8]}")
    survivor = f"y-{uuid.uuid4().hex[:8]}"
    await publish(producer, topics, a)
    await sla_event(kafka_bootstrap, topics, a, "started")
    record = merge(a.lead_id, survivor)
    sent = await producer.send_and_wait(
        topics.merges, record.to_bytes(), key=survivor.encode()
    )
    await wait_committed(kafka_bootstrap, topics.group("baton-sla-monitor"), sent)

    touch = base.contacted(a.lead_id, 0).model_copy(update={"occurred_at": datetime.now(UTC)})
    await publish(producer, topics, touch)
    met = await sla_event(kafka_bootstrap, topics, a, "met")
    assert (met["lead_id"], met["clock_id"]) == (survivor, clock_id(a))
