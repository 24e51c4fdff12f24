"""The router process: wiring of the consumer, the store, the dispatcher and the API.

Flow: ``leads.transitions`` → ``consume_forever`` (poison → DLQ) →
``RouterStore.route_transition`` (one transaction: consumed id + assignment +
outbox rows) → offsets committed → ``Dispatcher`` delivers the outbox (signed
webhook to the rep, record to ``leads.assignments``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import Counter

from baton_router.config import RouterSettings
from baton_router.dispatcher import Dispatcher
from baton_router.store import RouterStore
from baton_router.tables import Rep
from baton_shared.clock import utcnow
from baton_shared.consumer import consume_forever, make_consumer
from baton_shared.database import database_answers, make_engine, make_sessionmaker, migrate
from baton_shared.kafka import durable_producer, ensure_topics, kafka_answers
from baton_shared.logs import get_logger
from baton_shared.schemas import Activity, Transition, decode

log = get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_router"

ASSIGNMENTS = Counter("baton_router_assignments_total", "Leads assigned", ["strategy"])
QUEUED = Counter("baton_router_queued_total", "SQLs queued because no rep was available")


class KafkaUnavailable(RuntimeError):
    pass


class RouterService:
    def __init__(self, settings: RouterSettings):
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.store = RouterStore(make_sessionmaker(self.engine), settings.topics.assignments)
        self.http = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds)
        self._producer: AIOKafkaProducer | None = None
        self._dispatcher: Dispatcher | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []

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
        self._dispatcher = Dispatcher(
            self.store,
            self._producer,
            self.http,
            self.settings.retry_schedule_seconds,
            self.settings.dispatch_poll_seconds,
        )
        self._consumer = make_consumer(
            self.settings.kafka_bootstrap_servers, topics.group("baton-router"), topics.transitions
        )
        await self._consumer.start()
        self._tasks = [
            asyncio.create_task(self._dispatcher.run(), name="dispatcher"),
            asyncio.create_task(
                consume_forever(
                    self._consumer,
                    self._producer,
                    "baton-router",
                    lambda r: decode(Transition, r.value),
                    self._route,
                    after_batch=self._dispatcher.wake,
                ),
                name="consumer",
            ),
        ]
        log.info("router_started", topic=topics.transitions)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        await self.http.aclose()
        await self.engine.dispose()

    async def _route(self, transition: Transition) -> None:
        routed = await self.store.route_transition(transition, utcnow())
        if routed.assignment is not None:
            ASSIGNMENTS.labels(strategy=routed.assignment.strategy).inc()
            log.info(
                "lead_assigned",
                lead_id=transition.lead_id,
                rep_id=routed.assignment.rep_id,
                strategy=routed.assignment.strategy,
            )
        elif routed.status == "queued":
            QUEUED.inc()
            log.warning("lead_queued_no_rep_available", lead_id=transition.lead_id)

    async def create_rep(self, name: str, email: str, webhook_url: str, secret: str) -> Rep:
        rep = await self.store.create_rep(name, email, webhook_url, secret)
        drained = await self.store.drain_queue(utcnow())
        for a in drained:
            ASSIGNMENTS.labels(strategy=a.strategy).inc()
        if drained and self._dispatcher is not None:
            self._dispatcher.wake()
        return rep

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
