"""The SLA monitor process.

Flow: ``leads.assignments`` → open a clock (``started``); ``leads.activity``
``contacted`` → stop it (``met``); a sweep every tick publishes ``breached``
for clocks past their deadline — including deadlines that passed while the
monitor was down. Every event goes to ``leads.sla``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Histogram

from baton_shared.clock import utcnow
from baton_shared.consumer import consume_forever, make_consumer
from baton_shared.database import database_answers, make_engine, make_sessionmaker, migrate
from baton_shared.kafka import durable_producer, ensure_topics, kafka_answers
from baton_shared.logs import get_logger
from baton_shared.schemas import Activity, ActivityKind, Assignment, SlaEvent, decode
from baton_sla_monitor.clocks import ClockStore
from baton_sla_monitor.config import SlaSettings
from baton_sla_monitor.policy import SlaPolicy

log = get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_sla"

SLA_EVENTS = Counter("baton_sla_events_total", "SLA events published", ["status"])
SPEED_TO_LEAD = Histogram(
    "baton_sla_speed_to_lead_seconds",
    "Assignment to first touch, for met clocks",
    buckets=(10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 86400),
)
FIRE_LATENESS = Histogram(
    "baton_sla_breach_lateness_seconds",
    "How long after its deadline a breach was published",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30, 300),
)


def decode_record(record: ConsumerRecord) -> Assignment | Activity:
    if record.topic.endswith("leads.assignments"):
        return decode(Assignment, record.value)
    return decode(Activity, record.value)


class SlaService:
    def __init__(self, settings: SlaSettings):
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        policy = SlaPolicy(
            timedelta(seconds=settings.express_sql_seconds), timedelta(seconds=settings.sql_seconds)
        )
        self.clocks = ClockStore(make_sessionmaker(self.engine), policy, self._publish)
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        topics = self.settings.topics
        await migrate(self.engine, MIGRATIONS, VERSION_TABLE)
        await ensure_topics(
            self.settings.kafka_bootstrap_servers, topics.all(), self.settings.topic_partitions
        )
        self._producer = durable_producer(
            self.settings.kafka_bootstrap_servers, client_id="baton-sla-monitor"
        )
        await self._producer.start()
        self._consumer = make_consumer(
            self.settings.kafka_bootstrap_servers,
            topics.group("baton-sla-monitor"),
            topics.assignments,
            topics.activity,
        )
        await self._consumer.start()
        self._tasks = [
            asyncio.create_task(
                consume_forever(
                    self._consumer, self._producer, "baton-sla-monitor", decode_record, self._handle
                ),
                name="consumer",
            ),
            asyncio.create_task(self._sweep_forever(), name="breach-sweep"),
        ]
        log.info("sla_monitor_started")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        await self.engine.dispose()

    async def _publish(self, event: SlaEvent) -> None:
        assert self._producer is not None
        await self._producer.send_and_wait(
            self.settings.topics.sla, event.to_bytes(), key=event.lead_id.encode()
        )
        SLA_EVENTS.labels(status=event.status.value).inc()
        log.info("sla_event", lead_id=event.lead_id, rep_id=event.rep_id, status=event.status.value)

    async def _handle(self, item: Assignment | Activity) -> None:
        if isinstance(item, Assignment):
            await self.clocks.start(item)
        elif item.kind == ActivityKind.CONTACTED:
            clock = await self.clocks.contacted(item.lead_id, item.occurred_at)
            if clock is not None and clock.elapsed_seconds is not None:
                SPEED_TO_LEAD.observe(clock.elapsed_seconds)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                now = utcnow()
                for clock in await self.clocks.breach_due(now):
                    FIRE_LATENESS.observe(max(0.0, (now - clock.deadline_at).total_seconds()))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("breach_sweep_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.settings.tick_seconds)

    async def readiness(self) -> dict[str, bool]:
        db_ok, kafka_ok = await asyncio.gather(
            database_answers(self.engine), kafka_answers(self.settings.kafka_bootstrap_servers)
        )
        return {"database": db_ok, "kafka": kafka_ok}
