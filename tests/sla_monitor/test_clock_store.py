"""ClockStore against a real PostgreSQL (events captured instead of published): batches
of assignments with repeats and re-assignments, out-of-order assignments, touches that
arrive before their clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_shared.database import make_engine, make_sessionmaker, migrate
from baton_shared.schemas import Activity, ActivityKind, Assignment, SlaEvent, Stage, Transition
from baton_shared.sla_policy import load_policy, parse_policy
from baton_sla_monitor.clocks import Clock, ClockStore
from baton_sla_monitor.reports import Reports
from baton_sla_monitor.service import MIGRATIONS, VERSION_TABLE

pytestmark = pytest.mark.integration

T0 = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)


class Captured(list[SlaEvent]):
    async def __call__(self, events: Sequence[SlaEvent]) -> None:
        self.extend(events)

    def of(self, lead_id: str) -> list[tuple[str, str]]:
        return [(e.assignment_id, e.status.value) for e in self if e.lead_id == lead_id]


_reports: dict[ClockStore, Reports] = {}


def clock_store(sessions: async_sessionmaker[AsyncSession], policy, captured) -> ClockStore:
    """A ClockStore, and the API's reader over the same database for ``clocks_of``."""
    store = ClockStore(sessions, policy, captured)
    _reports[store] = Reports(sessions)
    return store


async def clocks_of(store: ClockStore, lead_id: str) -> list[Clock]:
    """A lead's clocks, oldest first, as the API reads them."""
    return await _reports[store].lead_clocks(lead_id, None, 1000)


@pytest.fixture
async def store(pg_cluster, unique_name: str) -> AsyncIterator[tuple[ClockStore, Captured]]:
    engine = make_engine(pg_cluster.create_database(unique_name), pool_size=2)
    await migrate(engine, MIGRATIONS, VERSION_TABLE)
    captured = Captured()
    try:
        yield clock_store(make_sessionmaker(engine), load_policy(), captured), captured
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
    statuses = {c.assignment_id: c.status for c in await clocks_of(clocks, "lead-a")}
    assert statuses == {first.assignment_id: "reassigned", later.assignment_id: "open"}
    assert await clocks.open_many([later, other]) == []  # re-delivery: nothing new


async def test_older_assignment_arriving_after_a_newer_one_never_opens(store) -> None:
    clocks, events = store
    newer, older = assignment("lead-c", 5), assignment("lead-c", 0)
    await clocks.open(newer)
    stale = await clocks.open(older)
    assert stale is not None and stale.status == "reassigned"
    assert events.of("lead-c") == [(newer.assignment_id, "started")]
    assert {c.status for c in await clocks_of(clocks, "lead-c")} == {"open", "reassigned"}


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
    (stored,) = await clocks_of(clocks, "lead-f")
    assert stored.first_touch_at == T0 + timedelta(minutes=1)


def transition(lead_id: str, minutes: float, to_stage: Stage = Stage.SQL) -> Transition:
    return Transition(
        transition_id=uuid.uuid4().hex,
        lead_id=lead_id,
        from_stage=Stage.NEW,
        to_stage=to_stage,
        score=120,
        fit=40,
        engagement=80,
        reason="threshold",
        trigger_event_id=uuid.uuid4().hex,
        occurred_at=T0 + timedelta(minutes=minutes),
        rules_version="test",
    )


def assigned(t: Transition, minutes: float, stage: Stage = Stage.SQL) -> Assignment:
    a = assignment(t.lead_id, minutes)
    return a.model_copy(
        update={"transition_id": t.transition_id, "qualified_at": t.occurred_at, "stage": stage}
    )


def of_measure(events: Captured, lead_id: str) -> list[tuple[str, str]]:
    return [(e.measure.value, e.status.value) for e in events if e.lead_id == lead_id]


async def test_sql_transition_opens_an_assign_clock_its_assignment_stops(store) -> None:
    clocks, events = store
    t = transition("lead-g", 0)
    await clocks.apply(transitions=[t])
    (waiting,) = await clocks_of(clocks, "lead-g")
    assert (waiting.measure, waiting.status, waiting.rep_id) == ("assign", "open", None)
    assert waiting.deadline_at == t.occurred_at + timedelta(seconds=60)  # assign_seconds

    a = assigned(t, 0.5)
    applied = await clocks.apply(transitions=[t], assignments=[a])  # the transition again

    assert [c.elapsed_seconds for c in applied.assigned] == [30]
    assert of_measure(events, "lead-g") == [
        ("assign", "started"),
        ("first_touch", "started"),
        ("assign", "met"),
    ]
    met = events[-1]
    assert (met.transition_id, met.rep_id, met.assignment_id) == (t.transition_id, None, None)
    assert met.elapsed_seconds == 30


async def test_assignment_consumed_before_its_transition_stops_the_assign_clock_at_once(
    store,
) -> None:
    clocks, events = store
    t = transition("lead-h", 0)
    await clocks.apply(assignments=[assigned(t, 2)])  # 2 minutes: over the 60 s target

    await clocks.apply(transitions=[t])

    assert of_measure(events, "lead-h") == [
        ("first_touch", "started"),
        ("assign", "started"),
        ("assign", "breached"),
    ]
    assert events[-1].elapsed_seconds == 120
    statuses = {c.measure: c.status for c in await clocks_of(clocks, "lead-h")}
    assert statuses == {"first_touch": "open", "assign": "breached"}


async def test_assignment_that_comes_after_the_sweep_breached_in_time_corrects_to_met(
    store,
) -> None:
    clocks, events = store
    t = transition("lead-i", 0)
    await clocks.apply(transitions=[t])
    fired = await clocks.fire_due(T0 + timedelta(minutes=5))  # nobody assigned it (yet)
    assert [f.status.value for f in fired] == ["breached"]

    await clocks.apply(assignments=[assigned(t, 0.5)])  # it was assigned in time after all

    assert of_measure(events, "lead-i")[-1] == ("assign", "met")


async def test_mql_transition_opens_an_mql_clock_that_the_first_contact_stops(store) -> None:
    clocks, events = store
    t = transition("lead-j", 0, Stage.MQL)
    await clocks.apply(transitions=[t])
    (mql,) = await clocks_of(clocks, "lead-j")  # no assign clock: most MQLs go to nurture
    assert (mql.measure, mql.stage, mql.rep_id, mql.window_seconds) == (
        "first_touch",
        "mql",
        None,
        86_400,
    )

    touched = await clocks.contacted(contacted("lead-j", 60 * 20))  # 20 h later

    assert touched is not None and touched.status == "met"
    assert of_measure(events, "lead-j") == [("first_touch", "started"), ("first_touch", "met")]


async def test_sdr_task_replaces_the_mql_clock_with_the_mql_window(store) -> None:
    clocks, _ = store
    t = transition("lead-k", 0, Stage.MQL)
    await clocks.apply(transitions=[t])
    task = assigned(t, 10, Stage.MQL)

    (opened,) = await clocks.open_many([task])

    assert (opened.stage, opened.window_seconds) == ("mql", 86_400)
    assert opened.deadline_at == task.assigned_at + timedelta(hours=24)
    statuses = {c.assignment_id: c.status for c in await clocks_of(clocks, "lead-k")}
    assert statuses == {None: "reassigned", task.assignment_id: "open"}


async def test_sql_transition_supersedes_the_open_mql_clock(store) -> None:
    clocks, events = store
    await clocks.apply(transitions=[transition("lead-l", 0, Stage.MQL)])
    await clocks.apply(transitions=[transition("lead-l", 30, Stage.SQL)])

    found = {(c.measure, c.stage): c.status for c in await clocks_of(clocks, "lead-l")}
    assert found == {("first_touch", "mql"): "superseded", ("assign", "sql"): "open"}
    fired = await clocks.fire_due(T0 + timedelta(days=2))
    assert len(fired) == 1  # only the SQL's assign clock breaches
    assert of_measure(events, "lead-l")[-1] == ("assign", "breached")


async def test_policy_can_open_assign_clocks_for_mqls_too(pg_cluster, unique_name) -> None:
    engine = make_engine(pg_cluster.create_database(unique_name), pool_size=2)
    await migrate(engine, MIGRATIONS, VERSION_TABLE)
    policy = parse_policy("name: sdr-everything\nassign_stages: [sql, mql]\n")
    clocks = clock_store(make_sessionmaker(engine), policy, Captured())
    try:
        await clocks.apply(transitions=[transition("lead-m", 0, Stage.MQL)])
        measures = sorted(c.measure for c in await clocks_of(clocks, "lead-m"))
        assert measures == ["assign", "first_touch"]
    finally:
        await engine.dispose()


async def test_touches_in_one_batch_stop_each_lead_at_its_earliest(store) -> None:
    clocks, events = store
    a, b = assignment("lead-n", 0), assignment("lead-o", 0)
    await clocks.open_many([a, b])
    later, earlier = contacted("lead-n", 4), contacted("lead-n", 2)

    applied = await clocks.apply(touches=[later, earlier, contacted("lead-o", 1), earlier])

    assert sorted(c.elapsed_seconds for c in applied.touched) == [60, 120]
    assert [e.status.value for e in events if e.lead_id == "lead-n"] == ["started", "met"]
