"""SlaService on the real broker and database: assignments start clocks, ``contacted``
stops them, the sweep breaches the overdue ones — once, even with two monitors."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from sqlalchemy import text

from baton_shared.ids import stable_id
from baton_shared.schemas import Activity, ActivityKind, Assignment
from baton_shared.topics import Topics
from baton_sla_monitor.service import SlaService
from tests.support.kafka import read_all, wait_committed, wait_for_record
from tests.support.sla import every_clock

pytestmark = pytest.mark.integration

SLA_GROUP = "baton-sla-monitor"


def now() -> datetime:
    return datetime.now(UTC)


def assignment(
    assigned_at: datetime, express: bool = True, lead_id: str | None = None
) -> Assignment:
    return Assignment(
        assignment_id=str(uuid.uuid4()),
        transition_id=uuid.uuid4().hex,
        lead_id=lead_id or f"lead-{uuid.uuid4().hex[:8]}",
        rep_id=str(uuid.uuid4()),
        strategy="round_robin",
        express=express,
        qualified_at=assigned_at - timedelta(milliseconds=50),
        assigned_at=assigned_at,
    )


def contacted(a: Assignment, at: datetime, activity_id: str | None = None) -> Activity:
    return Activity(
        activity_id=activity_id or uuid.uuid4().hex,
        lead_id=a.lead_id,
        rep_id=a.rep_id,
        kind=ActivityKind.CONTACTED,
        occurred_at=at,
    )


def clock_id(a: Assignment) -> str:
    return stable_id("clock", a.assignment_id)


# Fixtures (settings_for, topics, start_sla, producer) come from tests/sla_monitor/conftest.py.


async def publish(
    producer: AIOKafkaProducer, topics: Topics, record: Assignment | Activity
) -> RecordMetadata:
    topic = topics.assignments if isinstance(record, Assignment) else topics.activity
    return await producer.send_and_wait(topic, record.to_bytes(), key=record.lead_id.encode())


async def sla_event(
    kafka_bootstrap: str, topics: Topics, a: Assignment, status: str, timeout: float = 15.0
) -> dict[str, Any]:
    seen = await wait_for_record(
        kafka_bootstrap,
        topics.sla,
        lambda r: r["clock_id"] == clock_id(a) and r["status"] == status,
        timeout=timeout,
    )
    return seen[-1]


async def wait_consumed(
    kafka_bootstrap: str, topics: Topics, sent: RecordMetadata, timeout: float = 15.0
) -> None:
    """Wait until the monitor's group committed past ``sent`` (so it has handled it)."""
    await wait_committed(kafka_bootstrap, topics.group(SLA_GROUP), sent, timeout)


async def clock_row(service: SlaService, a: Assignment) -> dict[str, Any]:
    async with service.engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    text(
                        "SELECT status, closed_at, elapsed_seconds, deadline_at FROM sla.clocks "
                        "WHERE assignment_id = :a"
                    ),
                    {"a": a.assignment_id},
                )
            )
            .mappings()
            .one()
        )
    return dict(row)


def statuses(events: list[dict[str, Any]], a: Assignment) -> list[str]:
    """The clock's state changes in order; ``at_risk`` warnings before the end are left out
    (whether one fires depends on timing), but nothing may follow ``met``/``breached``."""
    seen = [e["status"] for e in events if e["clock_id"] == clock_id(a)]
    ends = [i for i, s in enumerate(seen) if s in ("met", "breached")]
    if ends:
        assert seen[ends[0] + 1 :] == [], f"events after {seen[ends[0]]}: {seen}"
    return [s for s in seen if s != "at_risk"]


async def test_assignment_starts_a_clock_that_breaches(
    start_sla, producer, topics, kafka_bootstrap
):
    await start_sla(BATON_SLA_EXPRESS_SQL_SECONDS="1.5")
    a = assignment(now())

    await publish(producer, topics, a)

    started = await sla_event(kafka_bootstrap, topics, a, "started")
    assert (started["lead_id"], started["rep_id"], started["assignment_id"]) == (
        a.lead_id,
        a.rep_id,
        a.assignment_id,
    )
    deadline = datetime.fromisoformat(started["deadline_at"])
    assert deadline - a.assigned_at == timedelta(seconds=1.5)

    breached = await sla_event(kafka_bootstrap, topics, a, "breached", timeout=10)
    assert datetime.fromisoformat(breached["at"]) >= deadline
    assert datetime.fromisoformat(breached["deadline_at"]) == deadline
    assert breached["event_id"] == stable_id(clock_id(a), "breached")


async def test_contact_before_deadline_is_met_and_never_breaches(
    start_sla, producer, topics, kafka_bootstrap
):
    service = await start_sla(BATON_SLA_EXPRESS_SQL_SECONDS="4")
    assigned_at = now()
    a = assignment(assigned_at)
    control = assignment(assigned_at)  # same deadline, never contacted
    await publish(producer, topics, a)
    await publish(producer, topics, control)
    await sla_event(kafka_bootstrap, topics, a, "started")

    touched_at = assigned_at + timedelta(seconds=1.25)
    await publish(producer, topics, contacted(a, touched_at))

    met = await sla_event(kafka_bootstrap, topics, a, "met")
    assert met["elapsed_seconds"] == pytest.approx(1.25)
    assert datetime.fromisoformat(met["at"]) == touched_at

    # Once the control clock has breached, the sweep has passed this deadline too.
    await sla_event(kafka_bootstrap, topics, control, "breached", timeout=10)
    events = await read_all(kafka_bootstrap, topics.sla, idle_s=0.5)
    assert statuses(events, a) == ["started", "met"]
    row = await clock_row(service, a)
    assert row["status"] == "met"
    assert row["elapsed_seconds"] == pytest.approx(1.25)


async def test_deadline_passed_while_monitor_was_down_breaches_on_start(
    start_sla, producer, topics, kafka_bootstrap
):
    a = assignment(now() - timedelta(minutes=10))  # express window 5 min: long overdue
    await publish(producer, topics, a)

    started_at = asyncio.get_running_loop().time()
    service = await start_sla(BATON_SLA_EXPRESS_SQL_SECONDS="300")
    breached = await sla_event(kafka_bootstrap, topics, a, "breached", timeout=10)
    took = asyncio.get_running_loop().time() - started_at

    assert took < 10
    assert datetime.fromisoformat(breached["deadline_at"]) == a.assigned_at + timedelta(minutes=5)
    events = await read_all(kafka_bootstrap, topics.sla, idle_s=0.5)
    assert statuses(events, a) == ["started", "breached"]
    assert (await clock_row(service, a))["status"] == "breached"


async def test_repeated_or_late_contact_after_met_publishes_nothing(
    start_sla, producer, topics, kafka_bootstrap
):
    service = await start_sla()  # default windows: 5 min express
    a = assignment(now())
    await publish(producer, topics, a)
    await sla_event(kafka_bootstrap, topics, a, "started")
    first = contacted(a, a.assigned_at + timedelta(seconds=30))
    await publish(producer, topics, first)
    await sla_event(kafka_bootstrap, topics, a, "met")
    met_row = await clock_row(service, a)

    await publish(producer, topics, first)  # the same activity re-delivered
    last = await publish(producer, topics, contacted(a, a.assigned_at + timedelta(minutes=20)))
    await wait_consumed(kafka_bootstrap, topics, last)  # same key: same partition, in order

    events = await read_all(kafka_bootstrap, topics.sla, idle_s=0.5)
    assert statuses(events, a) == ["started", "met"]
    row = await clock_row(service, a)
    assert row == met_row
    assert row["status"] == "met"
    assert row["elapsed_seconds"] == pytest.approx(30)


async def test_two_monitors_breach_each_due_clock_exactly_once(
    start_sla, producer, topics, kafka_bootstrap
):
    overdue = [assignment(now() - timedelta(minutes=10)) for _ in range(30)]
    # And 30 more that fall due at the same instant while both monitors are sweeping, so
    # both sweeps find the same batch due at once.
    together = now() - timedelta(minutes=5) + timedelta(seconds=2.5)
    due_together = [assignment(together) for _ in range(30)]
    for a in overdue + due_together:
        await publish(producer, topics, a)
    wanted = {clock_id(a) for a in overdue + due_together}

    await asyncio.gather(start_sla(), start_sla())  # express window: 5 min

    await wait_for_record(kafka_bootstrap, topics.sla, every_clock("breached", wanted), timeout=30)
    events = await read_all(kafka_bootstrap, topics.sla, idle_s=2.0)  # any double fire?

    per_clock = Counter(e["clock_id"] for e in events if e["status"] == "breached")
    assert set(per_clock) == wanted
    assert {c: n for c, n in per_clock.items() if n != 1} == {}
    assert sum(per_clock.values()) == 60
    started = Counter(e["clock_id"] for e in events if e["status"] == "started")
    assert started == dict.fromkeys(wanted, 1)


async def first_outcome(
    kafka_bootstrap: str, topics: Topics, a: Assignment, timeout: float = 15.0
) -> dict[str, Any]:
    seen = await wait_for_record(
        kafka_bootstrap,
        topics.sla,
        lambda r: r["clock_id"] == clock_id(a) and r["status"] in ("met", "breached"),
        timeout=timeout,
    )
    return seen[-1]


async def test_contact_in_time_but_consumed_after_the_sweep_still_counts(
    start_sla, producer, topics, kafka_bootstrap
):
    service = await start_sla(BATON_SLA_EXPRESS_SQL_SECONDS="1.5")
    a = assignment(now())
    await publish(producer, topics, a)
    await sla_event(kafka_bootstrap, topics, a, "breached", timeout=10)

    # The rep called half a second after assignment; the activity arrives late.
    sent = await publish(producer, topics, contacted(a, a.assigned_at + timedelta(seconds=0.5)))
    await wait_consumed(kafka_bootstrap, topics, sent)

    row = await clock_row(service, a)
    assert row["status"] == "met"
    assert row["elapsed_seconds"] == pytest.approx(0.5)
    # The correction goes out too, so the router and dashboards learn the rep was in time.
    met = await sla_event(kafka_bootstrap, topics, a, "met")
    assert met["elapsed_seconds"] == pytest.approx(0.5)


async def test_contact_consumed_before_its_assignment_still_counts(
    start_sla, producer, topics, kafka_bootstrap
):
    await start_sla(BATON_SLA_EXPRESS_SQL_SECONDS="1.5")
    a = assignment(now())

    sent = await publish(producer, topics, contacted(a, a.assigned_at + timedelta(seconds=0.5)))
    await wait_consumed(kafka_bootstrap, topics, sent)
    await publish(producer, topics, a)

    outcome = await first_outcome(kafka_bootstrap, topics, a, timeout=10)
    assert outcome["status"] == "met"
    assert outcome["elapsed_seconds"] == pytest.approx(0.5)
