"""The reporting feed: its own consumer group (``baton-sla-reporting``) reads
``leads.transitions``, ``leads.assignments``, ``leads.activity``, ``leads.sla``,
``leads.merges`` and ``leads.events`` through the shared consume pipeline into
:class:`~baton_sla_monitor.reporting.store.JourneyStore`, and refreshes the gauges.

A group of its own keeps the clocks' consumer free of the event stream's volume and
lets the store be rebuilt without touching the clocks. The feed shares the monitor's
event loop with the sweep, so it folds at most :data:`MAX_BATCH` records per batch:
each batch's work between two waits stays short, and a clock falling due is not kept
waiting behind the reporting of the ones before it. Which records count, and how
they decode, is :mod:`baton_shared.conversion.facts`, as for ``baton funnel``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from baton_shared.clock import utcnow
from baton_shared.consumer import make_consumer
from baton_shared.conversion import Fact, conversion_report
from baton_shared.conversion.facts import fact_from, fact_topics
from baton_shared.conversion.journeys import aliases_of, journey_of
from baton_shared.kafka_connection import KafkaConnection
from baton_shared.logs import get_logger
from baton_shared.pipeline import ConsumePipeline, RetryPolicy
from baton_shared.topics import Topics
from baton_sla_monitor.records import MAX_LENGTHS
from baton_sla_monitor.reporting import gauges
from baton_sla_monitor.reporting.store import JourneyStore

log = get_logger(__name__)

CONSUMER = "baton-sla-reporting"
MAX_BATCH = 250  # records per batch (fewer when BATON_SLA_CONSUME_BATCH is smaller)
Loop = Callable[[], Awaitable[None]]
#: Column widths of ``reporting.journeys``: a longer id is poison, for the DLQ.
LIMITS = {**MAX_LENGTHS, "anonymous_id": 256, "clock_id": 64, "event_id": 256}


def decode_fact(record: ConsumerRecord) -> Fact | None:
    """The record as a fact for the journeys (:func:`baton_shared.conversion.fact_from`);
    None when it says nothing the report uses (nor would the fold: an SLA warning, a
    clock started), or does not decode or fit: such a record is counted and passed over,
    never dead-lettered — each of these topics has a consumer that owns its DLQ (the
    clocks' consumer, the router's escalation, the scorer), and a second letter for the
    same record would only be noise."""
    if record.value is None:
        return None
    try:
        fact = fact_from(record.topic, record.value)
        fields = type(fact).model_fields if fact is not None else {}
        for name, limit in LIMITS.items():
            value = getattr(fact, name) if name in fields else None
            if isinstance(value, str) and len(value) > limit:
                raise ValueError(f"{name} is over {limit} characters")
    except ValueError as exc:
        topic = ".".join(record.topic.rsplit(".", 2)[-2:])
        gauges.SKIPPED.labels(topic).inc()
        log.warning("reporting_record_skipped", topic=topic, error=str(exc)[:200])
        return None
    if fact is None or (journey_of(fact) is None and aliases_of(fact) is None):
        return None
    return fact


class ReportingFeed:
    """The live feed and the gauge refresh, started and stopped with the monitor."""

    def __init__(
        self,
        store: JourneyStore,
        kafka: KafkaConnection | str,
        topics: Topics,
        *,
        retry: RetryPolicy,
        batch: int,
        refresh_seconds: float,
        gauge_days: float,
        mql_target_per_day: float,
    ) -> None:
        self.store = store
        self._bootstrap = kafka
        self._topics = topics
        self._retry = retry
        self._batch = min(batch, MAX_BATCH)
        self._refresh_seconds = refresh_seconds
        self._gauge_window = timedelta(days=gauge_days)
        self._target = mql_target_per_day
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self, producer: AIOKafkaProducer) -> list[tuple[str, Loop]]:
        """Join the group; the named loops to keep running (the feed, the gauges)."""
        self._consumer = make_consumer(
            self._bootstrap, self._topics.group(CONSUMER), *fact_topics(self._topics)
        )
        await self._consumer.start()
        pipeline = ConsumePipeline(
            self._consumer,
            producer,
            CONSUMER,
            decode_fact,
            self._apply,
            retry=self._retry,
            max_records=self._batch,
        )
        return [("reporting-feed", pipeline.run), ("reporting-gauges", self._refresh_forever)]

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def _apply(self, facts: list[Fact]) -> None:
        await self.store.apply(facts)

    async def refresh_gauges(self) -> None:
        until = utcnow()
        since = until - self._gauge_window
        journeys = await self.store.window(since, until)
        report = await asyncio.to_thread(
            conversion_report, journeys, since, until, "speed_to_lead", self._target
        )
        gauges.publish(report)

    async def _refresh_forever(self) -> None:
        while True:
            try:
                await self.refresh_gauges()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reporting_gauges_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self._refresh_seconds)
