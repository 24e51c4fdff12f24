"""The monitor's consume pipeline on the real broker and database: a record the clocks
can never take goes to the DLQ after bounded retries while the records behind it are
handled; a database outage stalls consumption and loses nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from baton_shared.ids import stable_id
from baton_shared.schemas import Assignment, Stage, Transition
from baton_shared.topics import dlq
from tests.support.kafka import read_all, wait_for_record
from tests.support.sla import every_clock
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

CONSUMER = "baton-sla-monitor"
#: Its deadline is past the last datetime Python can hold: the clocks can never open it.
END_OF_TIME = datetime(9999, 12, 31, 23, 59, 30, tzinfo=UTC)


def transition(occurred_at: datetime, lead_id: str | None = None) -> Transition:
    return Transition(
        transition_id=uuid.uuid4().hex,
        lead_id=lead_id or f"lead-{uuid.uuid4().hex[:8]}",
        from_stage=Stage.MQL,
        to_stage=Stage.SQL,
        score=110,
        fit=40,
        engagement=70,
        reason="demo requested",
        express=True,
        trigger_event_id=uuid.uuid4().hex,
        occurred_at=occurred_at,
        rules_version="test",
    )


def assignment() -> Assignment:
    now = datetime.now(UTC)
    return Assignment(
        assignment_id=str(uuid.uuid4()),
        transition_id=uuid.uuid4().hex,
        lead_id=f"lead-{uuid.uuid4().hex[:8]}",
        rep_id=f"rep-{uuid.uuid4().hex[:6]}",
        strategy="round_robin",
        express=True,
        qualified_at=now,
        assigned_at=now,
    )


def failures(transient: bool) -> float:
    labels = {"consumer": CONSUMER, "transient": str(transient).lower()}
    return REGISTRY.get_sample_value("baton_consumer_handler_failures_total", labels) or 0.0


async def test_a_record_the_handler_always_refuses_goes_to_the_dlq_and_the_next_is_handled(
    start_sla, producer, topics, kafka_bootstrap
) -> None:
    await start_sla()
    poison = transition(END_OF_TIME)
    normal = transition(datetime.now(UTC), lead_id=poison.lead_id)  # same partition, behind it
    sent = await producer.send_and_wait(
        topics.transitions, poison.to_bytes(), key=poison.lead_id.encode()
    )
    await producer.send_and_wait(topics.transitions, normal.to_bytes(), key=normal.lead_id.encode())

    normal_clock = stable_id("clock", "assign", normal.transition_id)
    await wait_for_record(kafka_bootstrap, topics.sla, every_clock("started", {normal_clock}), 15)
    [letter] = await wait_for_record(kafka_bootstrap, dlq(topics.transitions), lambda r: True, 15)

    assert (letter["partition"], letter["offset"]) == (sent.partition, sent.offset)
    assert letter["consumer"] == CONSUMER
    assert letter["error"].startswith("OverflowError")
    assert poison.transition_id in letter["value"]


async def test_a_database_outage_stalls_consumption_and_loses_nothing(
    start_sla, producer, topics, kafka_bootstrap, database_for_test
) -> None:
    proxy = TcpProxy.for_url(database_for_test)
    await proxy.start()
    # Few, quick attempts: were an outage counted toward them, the records would be on
    # the DLQ within a second.
    await start_sla(
        DATABASE_URL=proxy.url_through(database_for_test),
        BATON_SLA_CONSUME_MAX_ATTEMPTS="2",
        BATON_SLA_CONSUME_BACKOFF_SECONDS="0.05",
        BATON_SLA_CONSUME_MAX_BACKOFF_SECONDS="0.2",
    )
    await proxy.cut()
    before = failures(transient=True), failures(transient=False)
    backlog = [assignment() for _ in range(20)]
    for a in backlog:
        await producer.send(topics.assignments, a.to_bytes(), key=a.lead_id.encode())
    await producer.flush()

    async def retried_through_the_outage() -> bool:
        return failures(transient=True) >= before[0] + 8

    await wait_until(retried_through_the_outage, "retries while the database is down", 30)
    assert failures(transient=False) == before[1]
    assert await read_all(kafka_bootstrap, dlq(topics.assignments), idle_s=0.5) == []

    await proxy.restore()
    wanted = {stable_id("clock", a.assignment_id) for a in backlog}
    await wait_for_record(kafka_bootstrap, topics.sla, every_clock("started", wanted), 30)
    assert await read_all(kafka_bootstrap, dlq(topics.assignments), idle_s=0.5) == []
    await proxy.cut()
