"""ClockStore against a real PostgreSQL (events captured instead of published): batches
of assignments with repeats and re-assignments, out-of-order assignments, touches that
arrive before their clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from baton_shared.database import make_engine, make_sessionmaker, migrate
from baton_shared.schemas import Activity, ActivityKind, Assignment, SlaEvent
from baton_sla_monitor.clocks import ClockStore
from baton_sla_monitor.policy import load_policy
from baton_sla_monitor.service import MIGRATIONS, VERSION_TABLE

pytestmark = pytest.mark.integration

T0 = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)


class Captured(list[SlaEvent]):
    async def __call__(self, events: Sequence[SlaEvent]) -> None:
        self.extend(events)

    def of(self, lead_id: str) -> list[tuple[str, str]]:
        return [(e.assignment_id, e.status.value) for e in self if e.lead_id == lead_id]


@pytest.fixture
async def store(pg_cluster, unique_name: str) -> AsyncIterator[tuple[ClockStore, Captured]]:
    engine = make_engine(pg_cluster.create_database(unique_name), pool_size=2)
    await migrate(engine, MIGRATIONS, VERSION_TABLE)
    captured = Captured()
    try:
        yield ClockStore(make_sessionmaker(engine), load_policy(), captured), captured
    finally:
        await engine.dispose()


def assignment(lead_id: str, minutes: float, assignment_id: str | None = None) -> Assignment:
    at = T0 + timedelta(minutes=minutes)
    return Assignment(
        assignment_id=assignment_id or uuid.uuid4().hex,
        transition_id=uuid.uuid4().hex,
        lead_id=lead_id,
        rep_id=f"rep-{uuid.uuid4().hex[:4]}",
        strategy="round_robin",
        express=True,
        qualified_at=at,
        assigned_at=at,
    )


def contacted(lead_id: str, minutes: float, activity_id: str | None = None) -> Activity:
    return Activity(
        activity_id=activity_id or uuid.uuid4().hex,
        lead_id=lead_id,
        kind=ActivityKind.CONTACTED,
        occurred_at=T0 + timedelta(minutes=minutes),
    )


async def test_batch_with_a_repeat_and_a_reassignment_opens_only_the_newest_clock(store) -> None:
    clocks, events = store
    first = assignment("lead-a", 0)
    later = assignment("lead-a", 1)
    other = assignment("lead-b", 0)

    created = await clocks.open_many([later, first, other, first])

    assert sorted(c.assignment_id for c in created) == sorted(
        [first.assignment_id, later.assignment_id, other.assignment_id]
    )
    assert events.of("lead-a") == [(later.assignment_id, "started")]
    statuses = {c.assignment_id: c.status for c in await clocks.clocks_for("lead-a")}
    assert statuses == {first.assignment_id: "reassigned", later.assignment_id: "open"}
    assert await clocks.open_many([later, other]) == []  # re-delivery: nothing new


async def test_older_assignment_arriving_after_a_newer_one_never_opens(store) -> None:
    clocks, events = store
    newer, older = assignment("lead-c", 5), assignment("lead-c", 0)
    await clocks.open(newer)
    stale = await clocks.open(older)
    assert stale is not None and stale.status == "reassigned"
    assert events.of("lead-c") == [(newer.assignment_id, "started")]
    assert {c.status for c in await clocks.clocks_for("lead-c")} == {"open", "reassigned"}


async def test_touch_before_its_assignment_is_kept_and_met_on_opening(store) -> None:
    clocks, events = store
    assert await clocks.contacted(contacted("lead-d", 2)) is None  # no clock yet
    a = assignment("lead-d", 0)

    clock = await clocks.open(a)

    assert clock is not None and clock.status == "met"
    assert clock.elapsed_seconds == 120
    assert events.of("lead-d") == [(a.assignment_id, "started"), (a.assignment_id, "met")]


async def test_touch_before_the_assignment_does_not_stop_the_new_clock(store) -> None:
    clocks, _ = store
    await clocks.contacted(contacted("lead-e", 0))  # contacted before it was assigned
    clock = await clocks.open(assignment("lead-e", 1))
    assert clock is not None and clock.status == "open"


async def test_duplicate_touch_is_ignored_and_second_touch_does_not_move_the_clock(store) -> None:
    clocks, events = store
    a = assignment("lead-f", 0)
    await clocks.open(a)
    touch = contacted("lead-f", 1, activity_id="act-1")
    first = await clocks.contacted(touch)
    assert first is not None and first.elapsed_seconds == 60
    assert await clocks.contacted(touch) is None
    assert await clocks.contacted(contacted("lead-f", 3)) is None
    assert events.of("lead-f") == [(a.assignment_id, "started"), (a.assignment_id, "met")]
    (stored,) = await clocks.clocks_for("lead-f")
    assert stored.first_touch_at == T0 + timedelta(minutes=1)
