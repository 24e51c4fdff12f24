"""Minimum contact attempts: an assignment opens an attempts clock that ``contacted``
activities count toward (once each), met at the required count, ``at_risk`` and
``breached`` short of it, cancelled with the lead, moved with a merge. Real PostgreSQL
(the store, events captured) and the real broker for the monitor end to end, time
driven through the sweep."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from baton_shared.database import make_engine, make_sessionmaker, migrate
from baton_shared.ids import stable_id
from baton_shared.schemas import Activity, ActivityKind, Assignment, Stage
from baton_shared.sla_policy import parse_policy
from baton_sla_monitor.app import clock_out
from baton_sla_monitor.clocks import ClockStore
from baton_sla_monitor.service import MIGRATIONS, VERSION_TABLE
from tests.sla_monitor.test_clock_store import (
    T0,
    Captured,
    assigned,
    clock_store,
    clocks_of,
    contacted,
    transition,
)
from tests.sla_monitor.test_sla_cancel import recycled
from tests.sla_monitor.test_sla_merge import merge
from tests.sla_monitor.test_sla_service import assignment, now, publish
from tests.support.kafka import read_all, wait_committed, wait_for_record

pytestmark = pytest.mark.integration

POLICY_TEXT = "name: attempts\nattempts:\n  sql: {count: 6, within_business_days: 10}\n"
POLICY = parse_policy(POLICY_TEXT)
DAY = timedelta(days=1)


@pytest.fixture
async def store(pg_cluster, unique_name: str) -> AsyncIterator[tuple[ClockStore, Captured]]:
    engine = make_engine(pg_cluster.create_database(unique_name), pool_size=2)
    await migrate(engine, MIGRATIONS, VERSION_TABLE)
    captured = Captured()
    try:
        yield clock_store(make_sessionmaker(engine), POLICY, captured), captured
    finally:
        await engine.dispose()


def attempts_id(a: Assignment) -> str:
    return stable_id("clock", "attempts", a.assignment_id)


def attempts_events(events: Captured, a: Assignment) -> list[tuple[str, int | None]]:
    return [(e.status.value, e.attempts_made) for e in events if e.clock_id == attempts_id(a)]


async def attempts_clocks(clocks: ClockStore, lead_id: str) -> dict[str | None, tuple]:
    """The lead's attempts clocks as the API shows them: status and attempts made."""
    shown = [clock_out(c) for c in await clocks_of(clocks, lead_id)]
    return {c.assignment_id: (c.status, c.attempts_made) for c in shown if c.measure == "attempts"}


async def test_reassignment_restarts_the_count_and_a_recycle_cancels_it(store) -> None:
    clocks, events = store
    sql = transition("lead-a", 0)
    first = assigned(sql, 1)
    await clocks.apply(transitions=[sql], assignments=[first])
    await clocks.apply(touches=[contacted("lead-a", 2), contacted("lead-a", 3)])
    second = assigned(sql, 10)

    await clocks.apply(assignments=[second], touches=[contacted("lead-a", 11)])

    assert await attempts_clocks(clocks, "lead-a") == {
        first.assignment_id: ("reassigned", 2),
        second.assignment_id: ("open", 1),  # the calls before it were the first rep's
    }
    await clocks.apply(transitions=[recycled("lead-a", 20)])
    assert attempts_events(events, second) == [("started", 0), ("cancelled", 1)]
    assert await clocks.fire_due(T0 + 30 * DAY) == []


async def test_attempts_count_once_each_in_any_order_and_late_ones_correct_a_breach(
    store,
) -> None:
    clocks, events = store
    a = assigned(transition("lead-b", 0), 10)
    early = [contacted("lead-b", m) for m in (5, 20, 30)]  # the first before the assignment
    await clocks.apply(touches=[*early, early[1]])  # the same activity twice

    await clocks.apply(assignments=[a])
    assert await attempts_clocks(clocks, "lead-b") == {a.assignment_id: ("open", 2)}
    fired = await clocks.fire_due(a.assigned_at + 10 * DAY)
    assert [f.status.value for f in fired] == ["breached"]  # first-touch met: only attempts

    in_time = [contacted("lead-b", 60 * 24 * d) for d in (1, 2, 3, 4)]  # consumed late
    await clocks.apply(touches=[*in_time, contacted("lead-b", 60 * 24 * 11)])
    assert attempts_events(events, a) == [("started", 0), ("breached", 2), ("met", 6)]
    (met,) = [e for e in events if e.clock_id == attempts_id(a) and e.status.value == "met"]
    assert met.at == T0 + 4 * DAY  # the sixth attempt


async def test_a_merge_keeps_the_attempts_clock_of_the_kept_assignment(store) -> None:
    clocks, events = store
    x, y = assigned(transition("lead-x", 0), 1), assigned(transition("lead-y", 0), 2)
    await clocks.apply(assignments=[x, y], touches=[contacted("lead-x", 3)])

    await clocks.apply(merges=[merge("lead-x", "lead-y")])
    await clocks.apply(touches=[contacted("lead-x", 4)])  # by the merged-away id

    assert await attempts_clocks(clocks, "lead-y") == {
        x.assignment_id: ("cancelled", 1),
        y.assignment_id: ("open", 2),  # the survivor's own goes on; both calls count
    }
    assert attempts_events(events, x)[-1] == ("cancelled", 1)


def call(a: Assignment, seconds: float, kind: ActivityKind = ActivityKind.CONTACTED) -> Activity:
    return Activity(
        activity_id=uuid.uuid4().hex,
        lead_id=a.lead_id,
        rep_id=a.rep_id,
        kind=kind,
        occurred_at=a.assigned_at + timedelta(seconds=seconds),
    )


async def test_too_few_attempts_warn_then_breach_and_enough_meet_on_the_broker(
    start_sla, producer, topics, kafka_bootstrap, tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_TEXT)
    service = await start_sla(BATON_SLA_POLICY_FILE=str(path))
    start = now()
    short, enough = assignment(start, express=False), assignment(start, express=False)
    assert short.stage == Stage.SQL
    for a in (short, enough):
        await publish(producer, topics, a)
    calls = [call(short, s) for s in (10, 20, 30, 40)]
    others = [call(short, 50, ActivityKind.ACCEPTED), call(short, 60, ActivityKind.QUALIFIED)]
    for record in [*calls, calls[0], *others, *(call(enough, s) for s in range(1, 7))]:
        sent = await publish(producer, topics, record)

    met = await wait_for_record(
        kafka_bootstrap,
        topics.sla,
        lambda r: r["clock_id"] == attempts_id(enough) and r["status"] == "met",
    )
    assert (met[-1]["attempts_made"], met[-1]["attempts_required"]) == (6, 6)
    assert met[-1]["measure"] == "attempts" and met[-1]["rep_id"] == enough.rep_id
    await wait_committed(kafka_bootstrap, topics.group("baton-sla-monitor"), sent)

    await service.clocks.fire_due(start + 5 * DAY)  # half the window
    await service.clocks.fire_due(start + 10 * DAY)  # the deadline

    await wait_for_record(
        kafka_bootstrap,
        topics.sla,
        lambda r: r["clock_id"] == attempts_id(short) and r["status"] == "breached",
    )
    events = await read_all(kafka_bootstrap, topics.sla, idle_s=0.5)
    mine = [e for e in events if e["clock_id"] == attempts_id(short)]
    assert [(e["status"], e["warning_fraction"], e["attempts_made"]) for e in mine] == [
        ("started", None, 0),
        ("at_risk", 0.5, 4),
        ("breached", None, 4),
    ]
    breached = mine[-1]
    assert (breached["attempts_required"], breached["assignment_id"]) == (6, short.assignment_id)
    assert breached["deadline_at"] == (start + 10 * DAY).isoformat().replace("+00:00", "Z")
    statuses = [e["status"] for e in events if e["clock_id"] == attempts_id(enough)]
    assert statuses == ["started", "met"]
