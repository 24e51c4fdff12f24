"""The SLA monitor process.

Flow, in order:

1. At start-up the policy file is loaded and validated (a bad file stops the start
   with a message naming the file and field), migrations run, topics exist.
2. ``leads.transitions``, ``leads.assignments``, ``leads.activity`` and ``leads.merges``
   are consumed in batches by the shared
   :class:`~baton_shared.pipeline.ConsumePipeline` (records decoded by
   :mod:`baton_sla_monitor.records`, poison to the DLQ, one transaction per batch,
   bounded retries, offsets committed last) into :meth:`ClockStore.apply`:
   a qualifying transition opens an ``assign`` clock (and, for an MQL, the MQL
   first-touch clock); an assignment opens the rep's ``first_touch`` clock
   (``started``; a newer assignment of the lead closes the older one as
   ``reassigned``) and stops its transition's assign clock (``met``/``breached``); the
   first ``contacted`` activity stops the first-touch clock; ``leads.merges`` moves a
   merged lead's clocks to its survivor.
3. The sweep, when the next clock is due (at most ``BATON_SLA_TICK_SECONDS`` apart),
   takes due clocks of every measure in batches (``FOR UPDATE SKIP LOCKED`` on the
   partial index of open clocks) and publishes ``at_risk`` warnings and ``breached``
   deadlines — including those that passed while the monitor was down, and assign
   clocks of leads nobody could take.
4. Every event goes to ``leads.sla`` before its transaction commits; offsets are
   committed after, so a crash re-delivers and re-publishes with the same
   ``event_id`` rather than losing anything.
5. ``leads.erasures`` (``resolved``: every lead id of an erased person), on its own
   pipeline, erases those leads' clocks, touches and reporting rows
   (:mod:`baton_sla_monitor.erasure`), then finishes the monitor's step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from baton_shared.clock import utcnow
from baton_shared.consumer import make_consumer
from baton_shared.database import database_answers, make_engine, make_sessionmaker, migrate
from baton_shared.erasure_steps import carry_out, decode_resolved, open_keys
from baton_shared.kafka import durable_producer, ensure_topics, kafka_answers
from baton_shared.logs import get_logger
from baton_shared.pipeline import ConsumePipeline
from baton_shared.privacy.keystore import KeyStore
from baton_shared.schemas import LeadErasure, SlaEvent
from baton_shared.supervision import Supervisor
from baton_sla_monitor.clocks import Applied, ClockStore
from baton_sla_monitor.config import SlaSettings
from baton_sla_monitor.erasure import erase_leads
from baton_sla_monitor.metrics import (
    COMPLIANCE,
    FIRE_LATENESS,
    OPEN_CLOCKS,
    SLA_EVENTS,
    SPEED_TO_LEAD,
    TIME_TO_ASSIGN,
    team_label,
)
from baton_sla_monitor.records import Batch, Item, decode_record
from baton_sla_monitor.reporting import migrate_reporting, reporting_feed
from baton_sla_monitor.reports import Reports
from baton_sla_monitor.sweep import pause_seconds
from baton_sla_monitor.tables import Clock

log = get_logger(__name__)

STOP_SECONDS = 10.0  # per background task group at shutdown

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_sla"
COMPLIANCE_WINDOW = timedelta(hours=24)
CONSUMER = "baton-sla-monitor"
ERASURES = "baton-sla-monitor-erasures"
STEP = "sla-monitor"  # this service's step of an erasure


class SlaService:
    def __init__(self, settings: SlaSettings):
        self.settings = settings
        self.policy = settings.sla_policy()
        self.engine = make_engine(settings.database_url)
        sessions = self._sessions = make_sessionmaker(self.engine)
        self.clocks = ClockStore(sessions, self.policy, self._publish)
        self.reports = Reports(sessions)
        self.reporting = reporting_feed(settings, self.engine)
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._erasures: AIOKafkaConsumer | None = None
        self._keys: KeyStore | None = None
        self.supervisor = Supervisor()

    async def start(self) -> None:
        topics = self.settings.topics
        await migrate(self.engine, MIGRATIONS, VERSION_TABLE)
        await migrate_reporting(self.engine)
        settings = self.settings
        self._keys = await open_keys(settings)
        if settings.privacy_keys is not None:
            self.reporting.store.keys = self._keys
        await ensure_topics(
            settings.kafka, topics.all(), settings.topic_partitions, settings.topic_durability
        )
        self._producer = durable_producer(settings.kafka, client_id="baton-sla-monitor")
        await self._producer.start()
        self._consumer = make_consumer(
            self.settings.kafka,
            topics.group(CONSUMER),
            topics.transitions,
            topics.assignments,
            topics.activity,
            topics.merges,
        )
        await self._consumer.start()
        pipeline = ConsumePipeline(
            self._consumer,
            self._producer,
            CONSUMER,
            decode_record,
            self._handle_items,
            retry=self.settings.consume_retry,
            max_records=self.settings.consume_batch,
        )
        self.supervisor.start("consumer", pipeline.run)
        self._erasures = make_consumer(settings.kafka, topics.group(ERASURES), topics.erasures)
        await self._erasures.start()
        erasing = ConsumePipeline(
            self._erasures,
            self._producer,
            ERASURES,
            decode_resolved,
            self.erase,
            retry=settings.consume_retry,
            max_records=settings.consume_batch,
        )
        self.supervisor.start("erasures", erasing.run)
        self.supervisor.start("sweep", self._sweep_forever)
        self.supervisor.start("stats", self._stats_forever)
        if self.settings.reporting:
            for name, loop in await self.reporting.start(self._producer):
                self.supervisor.start(name, loop)
        log.info("sla_monitor_started", policy=self.policy.version)

    async def stop(self) -> None:
        await self.supervisor.stop(STOP_SECONDS)
        for consumer in (self._consumer, self._erasures):
            if consumer is not None:
                await consumer.stop()
        await self.reporting.stop()
        if self._keys is not None:
            await self._keys.close()
        if self._producer is not None:
            await self._producer.stop()
        await self.engine.dispose()

    async def _publish(self, events: Sequence[SlaEvent]) -> None:
        """Send a batch and wait until Kafka acknowledged every record."""
        assert self._producer is not None
        topic = self.settings.topics.sla
        pending = [
            await self._producer.send(topic, e.to_bytes(), key=e.lead_id.encode()) for e in events
        ]
        await asyncio.gather(*pending)
        for event in events:
            SLA_EVENTS.labels(
                event.status.value, event.stage, team_label(event.team), event.measure.value
            ).inc()
        if len(events) <= 10:
            for event in events:
                log.info(
                    "sla_event",
                    lead_id=event.lead_id,
                    rep_id=event.rep_id,
                    status=event.status.value,
                    measure=event.measure.value,
                )
        else:
            log.info("sla_events", count=len(events))

    async def erase(self, erasures: list[LeadErasure]) -> None:
        """Erase the leads of resolved erasures, then finish this service's step."""
        assert self._keys is not None
        await carry_out(
            erasures, self._keys, STEP, lambda erased: erase_leads(self._sessions, erased, utcnow())
        )

    async def _handle_items(self, items: list[Item]) -> Applied:
        return await self.handle(Batch.of(items))

    async def handle(self, batch: Batch) -> Applied:
        """One consumer batch into the clocks (one transaction), then its metrics."""
        applied = await self.clocks.apply(
            batch.transitions, batch.assignments, batch.touches, batch.merges
        )
        for clock in applied.opened:
            if clock.system_delay_seconds is not None:
                TIME_TO_ASSIGN.labels(clock.stage, team_label(clock.team)).observe(
                    clock.system_delay_seconds
                )
        for clock in applied.touched:
            _observe_touch(clock)
        for clock in applied.opened:
            _observe_touch(clock)
        return applied

    async def sweep_once(self) -> int:
        """Fire everything due now, batch after batch; how many events went out."""
        total = 0
        while True:
            now = utcnow()
            fired = await self.clocks.fire_due(now, self.settings.sweep_batch)
            for f in fired:
                FIRE_LATENESS.labels(f.status.value).observe(f.lateness_seconds)
            total += len(fired)
            if len(fired) < self.settings.sweep_batch:
                return total

    async def _sweep_forever(self) -> None:
        tick = self.settings.tick_seconds
        while True:
            pause = tick
            try:
                await self.sweep_once()
                pause = pause_seconds(await self.clocks.next_due(), utcnow(), tick)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("sla_sweep_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(pause)

    async def _stats_forever(self) -> None:
        while True:
            try:
                for measure, count in (await self.clocks.open_count()).items():
                    OPEN_CLOCKS.labels(measure).set(count)
                now = utcnow()
                window = now - COMPLIANCE_WINDOW
                for row in await self.reports.compliance(window, now, "team", percentiles=False):
                    if row.compliance_ratio is not None:
                        COMPLIANCE.labels(team_label(row.key)).set(row.compliance_ratio)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("sla_stats_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.settings.stats_seconds)

    async def readiness(self) -> dict[str, bool]:
        db_ok, kafka_ok = await asyncio.gather(
            database_answers(self.engine), kafka_answers(self.settings.kafka)
        )
        return {"database": db_ok, "kafka": kafka_ok}


def _observe_touch(clock: Clock) -> None:
    if clock.first_touch_at is not None and clock.elapsed_seconds is not None:
        SPEED_TO_LEAD.labels(clock.stage, team_label(clock.team)).observe(clock.elapsed_seconds)
