"""The router process: wiring of the consumers, the store, the dispatcher and the API.

Flow: ``leads.transitions`` → ``consume_forever`` (poison → DLQ) →
``RouterStore.route_transition`` (one transaction: consumed id + assignment, or queue
entry, or nurture enrolment + outbox rows; the decision is ``routing.decide``) →
offsets committed → ``Dispatcher`` delivers the outbox (signed webhook, record to
``leads.assignments``).

Around it: ``leads.sla`` → on ``breached``, ``RouterStore.escalate`` re-assigns (or
tells the manager) and tells the original rep the lead was taken back; a drain tick
assigns queued SQLs when reps come on shift, back from out-of-office, or free capacity
(also drained at once on every API change that could make someone available).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import create_async_engine

from baton_router.config import RouterSettings
from baton_router.config_store import ConfigStore
from baton_router.consumer import consume_batches
from baton_router.dispatcher import Dispatcher
from baton_router.store import KEEP_OPEN, PayloadContext, Routed, RouterStore
from baton_router.tables import OutboxRow, Rep
from baton_shared.clock import utcnow
from baton_shared.consumer import consume_forever, make_consumer, refuse_nul
from baton_shared.database import database_answers, make_sessionmaker, migrate
from baton_shared.kafka import durable_producer, ensure_topics, kafka_answers
from baton_shared.logs import get_logger
from baton_shared.schemas import Activity, Assignment, SlaEvent, SlaStatus, Transition, decode
from baton_shared.settings import to_asyncpg_url
from baton_shared.tasks import cancel_and_wait

log = get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_router"
STOP_SECONDS = 10.0

ASSIGNMENTS = Counter("baton_router_assignments_total", "Leads assigned", ["strategy", "pool"])
QUEUED = Counter("baton_router_queued_total", "SQLs queued because no rep was available")
NURTURED = Counter("baton_router_nurture_enrolments_total", "MQLs enrolled in a nurture track")
ESCALATIONS = Counter("baton_router_escalations_total", "SLA breaches handled", ["outcome"])
QUEUE_DEPTH = Gauge("baton_router_queue_depth", "SQLs waiting for an available rep")
ROUTE_BATCH = Histogram(
    "baton_router_route_batch_seconds",
    "One consumed batch routed: the database transaction that decides and writes it",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 5),
)
CONSUME_LAG = Histogram(
    "baton_router_consume_lag_seconds",
    "From the scorer emitting a transition (its emitted_at) to the router starting to route it",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 5, 30),
)
REP_LOAD = Gauge(
    "baton_router_rep_open_leads", "Open (not yet contacted) leads per rep", ["rep_id"]
)


class KafkaUnavailable(RuntimeError):
    pass


class RouterService:
    def __init__(self, settings: RouterSettings):
        self.settings = settings
        # No pre-ping: the router checks a connection out several times per batch, and a
        # ping per checkout is a round trip per statement group. A connection broken by a
        # database restart fails once, is discarded by the pool, and the caller retries
        # (the consume loop and the dispatcher both do).
        self.engine = create_async_engine(
            to_asyncpg_url(settings.database_url), pool_size=10, max_overflow=5
        )
        sessions = make_sessionmaker(self.engine)
        self.store = RouterStore(
            sessions,
            settings.topics.assignments,
            PayloadContext(public_url=settings.base_url, sla_policy=settings.sla_policy()),
        )
        self.store.fast_lease = timedelta(seconds=settings.outbox_lease_seconds)
        self.store.per_endpoint = settings.webhook_concurrency
        self.config = ConfigStore(sessions)
        self.http: aiohttp.ClientSession | None = None
        self._producer: AIOKafkaProducer | None = None
        self._dispatcher: Dispatcher | None = None
        self._consumers: list[AIOKafkaConsumer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._drain_lock = asyncio.Lock()

    async def start(self) -> None:
        topics = self.settings.topics
        await migrate(self.engine, MIGRATIONS, VERSION_TABLE)
        await ensure_topics(
            self.settings.kafka_bootstrap_servers, topics.all(), self.settings.topic_partitions
        )
        # aiokafka clients bind to the running loop, so they are made here, not in __init__.
        self._producer = durable_producer(
            self.settings.kafka_bootstrap_servers, client_id="baton-router"
        )
        await self._producer.start()
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout_seconds),
            connector=aiohttp.TCPConnector(limit=100, limit_per_host=0),
        )
        self._dispatcher = Dispatcher(
            self.store,
            self._producer,
            self.http,
            self.settings.retry_schedule_seconds,
            self.settings.dispatch_poll_seconds,
            per_endpoint=self.settings.webhook_concurrency,
            lease=timedelta(seconds=self.settings.outbox_lease_seconds),
        )
        transitions = make_consumer(
            self.settings.kafka_bootstrap_servers, topics.group("baton-router"), topics.transitions
        )
        breaches = make_consumer(
            self.settings.kafka_bootstrap_servers,
            topics.group("baton-router-escalation"),
            topics.sla,
        )
        self._consumers = [transitions, breaches]
        for consumer in self._consumers:
            await consumer.start()
        self._tasks = [
            asyncio.create_task(self._dispatcher.run(), name="dispatcher"),
            asyncio.create_task(
                consume_batches(
                    transitions,
                    self._producer,
                    "baton-router",
                    _decode_transition,
                    self._route,
                ),
                name="consumer",
            ),
            asyncio.create_task(
                consume_forever(
                    breaches,
                    self._producer,
                    "baton-router-escalation",
                    _decode_breach,
                    self._escalate,
                    after_batch=self._dispatcher.wake,
                ),
                name="escalation",
            ),
            asyncio.create_task(self._drain_forever(), name="drain"),
        ]
        log.info("router_started", topic=topics.transitions)

    async def stop(self) -> None:
        """Stop within bounded time: the background tasks, then each client, get
        ``STOP_SECONDS`` to end or close cleanly (a broker that does not answer must not
        hang shutdown; offsets not committed are re-delivered, which routing absorbs)."""
        await cancel_and_wait(self._tasks, STOP_SECONDS)
        if self._dispatcher is not None:
            await self._dispatcher.stop()
        closers = [consumer.stop() for consumer in self._consumers]
        if self._producer is not None:
            closers.append(self._producer.stop())
        if self.http is not None:
            closers.append(self.http.close())
        for closer in closers:
            try:
                await asyncio.wait_for(closer, STOP_SECONDS)
            except (TimeoutError, Exception) as exc:
                log.warning("router_stop_slow", error=f"{type(exc).__name__}: {exc}")
        await self.engine.dispose()

    # -- the stream --------------------------------------------------------------------

    async def _route(self, transitions: list[Transition]) -> None:
        now = utcnow()
        for transition in transitions:
            if transition.emitted_at is not None:
                CONSUME_LAG.observe(max(0.0, (now - transition.emitted_at).total_seconds()))
        started = time.monotonic()
        results = await self.store.route_batch(transitions, now)
        ROUTE_BATCH.observe(time.monotonic() - started)
        fresh = [leased for routed in results for leased in routed.outbox]
        if self._dispatcher is not None:
            if fresh:
                await self._dispatcher.submit(fresh)
            if any(_left_for_claim(routed) for routed in results):
                self._dispatcher.wake()  # rows written unleased go through the claim loop
        for transition, routed in zip(transitions, results, strict=True):
            if routed.assignment is not None:
                self._assigned(routed.assignment)
            if routed.status == "queued":
                QUEUED.inc()
                QUEUE_DEPTH.inc()
                log.warning("lead_queued_no_rep_available", lead_id=transition.lead_id)
            elif routed.status == "nurtured":
                NURTURED.inc()
                log.info("lead_nurtured", lead_id=transition.lead_id)

    def _assigned(self, assignment: Assignment) -> None:
        ASSIGNMENTS.labels(strategy=assignment.strategy, pool=assignment.pool or "").inc()
        log.info(
            "lead_assigned",
            lead_id=assignment.lead_id,
            rep_id=assignment.rep_id,
            strategy=assignment.strategy,
            pool=assignment.pool,
            stage=assignment.stage.value,
        )

    async def _escalate(self, event: SlaEvent | None) -> None:
        if event is None:
            return
        outcome = await self.store.escalate(
            uuid.UUID(event.assignment_id), utcnow(), self.settings.max_reassignments
        )
        ESCALATIONS.labels(outcome=outcome.status).inc()
        if outcome.assignment is not None:
            self._assigned(outcome.assignment)
        log.info(
            "sla_breach_escalated",
            lead_id=event.lead_id,
            assignment_id=event.assignment_id,
            outcome=outcome.status,
        )

    async def _drain_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.drain_seconds)
            try:
                await self.drain()
                await self._refresh_gauges()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("drain_failed", error=f"{type(exc).__name__}: {exc}")

    async def drain(self) -> int:
        """Assign what waits in the queue to whoever is available now."""
        async with self._drain_lock:
            drained = await self.store.drain_queue(utcnow())
        for assignment in drained:
            self._assigned(assignment)
        if drained and self._dispatcher is not None:
            self._dispatcher.wake()
        return len(drained)

    async def _refresh_gauges(self) -> None:
        QUEUE_DEPTH.set(await self.store.queue_depth())
        loads = await self.store.rep_loads()
        for rep in await self.store.list_reps():
            REP_LOAD.labels(rep_id=str(rep.id)).set(loads.get(rep.id, 0))

    # -- what the API calls ------------------------------------------------------------

    async def create_rep(
        self, name: str, email: str, webhook_url: str, secret: str, **profile: Any
    ) -> Rep:
        rep = await self.store.create_rep(name, email, webhook_url, secret, **profile)
        await self.drain()
        return rep

    async def update_rep(self, rep_id: uuid.UUID, changes: dict[str, Any]) -> Rep:
        rep = await self.config.update_rep(rep_id, changes)
        await self.drain()
        return rep

    async def configuration_changed(self) -> None:
        await self.drain()

    async def activity_recorded(self, lead_id: str, rep_id: uuid.UUID | None, kind: str) -> None:
        """A lead contacted, rejected, won or lost no longer counts against the rep's
        capacity (see :meth:`RouterStore.close_assignment`)."""
        await self.store.close_assignment(lead_id, rep_id, kind, utcnow())
        if kind not in KEEP_OPEN:
            await self.drain()

    async def replay(self, row_id: int) -> OutboxRow | None:
        row = await self.store.replay(row_id, utcnow())
        if row is not None and self._dispatcher is not None:
            self._dispatcher.wake()
        return row

    async def publish_activity(self, activity: Activity) -> None:
        if self._producer is None:
            raise KafkaUnavailable("not connected to Kafka")
        try:
            await asyncio.wait_for(
                self._producer.send_and_wait(
                    self.settings.topics.activity,
                    activity.to_bytes(),
                    key=activity.lead_id.encode(),
                ),
                timeout=10,
            )
        except Exception as exc:
            raise KafkaUnavailable(str(exc)) from exc

    async def readiness(self) -> dict[str, bool]:
        db_ok, kafka_ok = await asyncio.gather(
            database_answers(self.engine), kafka_answers(self.settings.kafka_bootstrap_servers)
        )
        return {"database": db_ok, "kafka": kafka_ok}


def _left_for_claim(routed: Routed) -> bool:
    """Outbox rows the routing transaction wrote without leasing them to this router:
    nurture webhooks, an SDR's ``lead.taken_back``, and webhooks to an endpoint at its
    concurrency limit."""
    if routed.status == "nurtured" or routed.sdr_told:
        return True
    return routed.assignment is not None and not any(
        leased.row.kind == "webhook" for leased in routed.outbox
    )


def _decode_transition(record: ConsumerRecord) -> Transition:
    """A transition the router can store; anything else is poison (to the DLQ)."""
    refuse_nul(record.value)  # the whole transition is kept as JSONB
    transition = decode(Transition, record.value)
    if len(transition.transition_id) > 64 or len(transition.lead_id) > 256:
        raise ValueError("transition_id over 64 or lead_id over 256 characters")
    return transition


def _decode_breach(record: ConsumerRecord) -> SlaEvent | None:
    """Only a rep's ``breached`` clock matters here (``measure`` first_touch, with an
    assignment); others decode to None and are skipped. The pipeline's own clocks
    (``measure`` assign) name no rep: nobody to take the lead from."""
    event = decode(SlaEvent, record.value)
    if event.status != SlaStatus.BREACHED or event.assignment_id is None:
        return None
    if str(getattr(event, "measure", "first_touch")) != "first_touch":
        return None
    uuid.UUID(event.assignment_id)  # ValueError → DLQ: not an assignment of this router
    return event
