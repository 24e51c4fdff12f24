"""A lead recycled or disqualified leaves the funnel: its open clocks are cancelled
(a ``cancelled`` event each, once), the sweep never breaches them after their deadline,
and a clock that already ended, or one the lead qualified for later, is left alone.
Real PostgreSQL; events captured as they would be published."""

from __future__ import annotations

from datetime import timedelta

import pytest

from baton_shared.schemas import Stage
from tests.sla_monitor import test_clock_store as base
from tests.sla_monitor.test_clock_store import (
    T0,
    assigned,
    clocks_of,
    contacted,
    of_measure,
    transition,
)

pytestmark = pytest.mark.integration

store = base.store


def recycled(lead_id: str, minutes: float, stage: Stage = Stage.RECYCLED):
    return transition(lead_id, minutes, stage).model_copy(update={"from_stage": Stage.SQL})


async def test_recycled_lead_cancels_its_rep_clock_and_it_never_breaches(store) -> None:
    clocks, events = store
    sql = transition("lead-r", 0)
    await clocks.apply(transitions=[sql], assignments=[assigned(sql, 0.5)])
    gone = recycled("lead-r", 10)

    await clocks.apply(transitions=[gone])
    await clocks.apply(transitions=[gone])  # re-delivered: nothing more

    [rep_clock] = [c for c in await clocks_of(clocks, "lead-r") if c.measure == "first_touch"]
    assert (rep_clock.status, rep_clock.next_fire_at) == ("cancelled", None)
    assert rep_clock.closed_at == gone.occurred_at
    assert of_measure(events, "lead-r")[-1] == ("first_touch", "cancelled")
    assert [e.status.value for e in events if e.lead_id == "lead-r"].count("cancelled") == 1
    assert await clocks.fire_due(T0 + timedelta(days=3)) == []
    assert of_measure(events, "lead-r")[-1] == ("first_touch", "cancelled")


async def test_disqualified_cancels_waiting_clocks_but_not_ended_or_later_ones(store) -> None:
    clocks, events = store
    sql = transition("lead-s", 0)  # its assign clock waits: nobody took the lead
    touched = transition("lead-t", 0)
    await clocks.apply(transitions=[sql, touched], assignments=[assigned(touched, 0.5)])
    await clocks.contacted(contacted("lead-t", 2))
    again = transition("lead-s", 20)  # qualifies again after leaving: a clock of its own

    await clocks.apply(
        transitions=[recycled("lead-s", 10, Stage.DISQUALIFIED), again, recycled("lead-t", 10)]
    )

    by_transition = {c.transition_id: c.status for c in await clocks_of(clocks, "lead-s")}
    assert by_transition == {sql.transition_id: "cancelled", again.transition_id: "open"}
    assert {c.status for c in await clocks_of(clocks, "lead-t")} == {"met"}
    assert ("first_touch", "cancelled") not in of_measure(events, "lead-t")
    fired = await clocks.fire_due(T0 + timedelta(days=3))
    assert [(f.status.value, f.stage) for f in fired] == [("breached", "sql")]  # the later one


async def test_assignment_consumed_after_its_lead_left_opens_no_clock_that_breaches(
    store,
) -> None:
    clocks, events = store
    sql = transition("lead-u", 0)
    await clocks.apply(transitions=[sql])  # the assign clock waits for the assignment
    await clocks.apply(transitions=[recycled("lead-u", 10)])
    late = assigned(sql, 0.5)  # made before the recycle, consumed after it

    await clocks.apply(assignments=[late])

    statuses = {c.measure: c.status for c in await clocks_of(clocks, "lead-u")}
    assert statuses == {"assign": "cancelled", "first_touch": "cancelled"}
    assert await clocks.fire_due(T0 + timedelta(days=3)) == []
    assert of_measure(events, "lead-u")[-1] == ("first_touch", "cancelled")
