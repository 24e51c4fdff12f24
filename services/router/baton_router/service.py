"""The router process: wires its consumers, stores, dispatcher and queue drainer.

``leads.transitions`` → ``ConsumePipeline`` (poison → DLQ, bounded retries) →
``Intake.route`` (``RoutingStore.route_batch``: one transaction per batch, consumed ids +
assignments or queue entries or nurture enrolments + outbox rows) → offsets committed →
``Dispatcher`` delivers the outbox (signed webhooks, records to ``leads.assignments``).
``leads.sla`` → ``Intake.escalate`` on a breach. ``leads.merges`` → ``Intake.merge``.
``QueueDrainer`` assigns queued leads when reps become available. ``leads.erasures``
(``resolved``) → ``Erasures.apply`` erases a person's rows; ``Erasures`` also opens the
sealed fields of transitions in privacy mode and serves ``/v1/privacy``. The HTTP API
acts through ``RouterActions`` and the stores.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy.ext.asyncio import create_async_engine

from baton_router.actions import RouterActions
from baton_router.config import RouterSettings
from baton_router.dispatcher import Dispatcher
from baton_router.erasure import Erasures
from baton_router.express import LanePipeline
from baton_router.intake import Intake, decode_breach, decode_merge, decode_transition
from baton_router.payloads import PayloadContext
from baton_router.queue_drain import QueueDrainer
from baton_router.store import open_stores
from baton_router.store.erasure import ErasureStore
from baton_router.webhook_targets import CheckedResolver
from baton_shared.consumer import make_consumer
from baton_shared.database import database_answers, make_sessionmaker, migrate
from baton_shared.erasure_steps import decode_resolved, open_keys
from baton_shared.kafka import durable_producer, ensure_topics, kafka_answers
from baton_shared.logs import get_logger
from baton_shared.pipeline import ConsumePipeline, each
from baton_shared.privacy.keystore import KeyStore
from baton_shared.settings import to_asyncpg_url
from baton_shared.supervision import Supervisor

log = get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_router"
STOP_SECONDS = 10.0


class RouterService:
    def __init__(self, settings: RouterSettings):
        self.settings = settings
        # No pre-ping: the router checks a connection out several times per batch, and a
        # ping per checkout is a round trip per statement group. A connection broken by a
        # database restart fails once, is discarded by the pool, and the caller retries
        # (the consume loop and the dispatcher both do).
        self.engine = create_async_engine(
            to_asyncpg_url(settings.database_url),
            pool_size=10,
            max_overflow=5,
            hide_parameters=True,  # an error's bound values are personal data
        )
        sessions = make_sessionmaker(self.engine)
        self.erasure_store = ErasureStore(sessions)
        self.stores = open_stores(
            sessions,
            settings.topics.assignments,
            PayloadContext(
                public_url=settings.base_url,
                sla_policy=settings.sla_policy(),
                links=settings.link_signer,
            ),
            fast_lease=timedelta(seconds=settings.outbox_lease_seconds),
            per_endpoint=settings.webhook_concurrency,
            box=settings.secret_box,
        )
        # Webhook targets: checked at registration (the API) and at every delivery.
        self.targets = CheckedResolver(settings.target_policy)
        # Made in ``start``: aiokafka and aiohttp clients bind to the running loop.
        self.actions: RouterActions | None = None
        self.erasures: Erasures | None = None
        self._keys: KeyStore | None = None
        self.http: aiohttp.ClientSession | None = None
        self._producer: AIOKafkaProducer | None = None
        self._dispatcher: Dispatcher | None = None
        self._consumers: list[AIOKafkaConsumer] = []
        self.supervisor = Supervisor()

    async def start(self) -> None:
        settings, topics = self.settings, self.settings.topics
        await migrate(self.engine, MIGRATIONS, VERSION_TABLE, secret_box=settings.secret_box)
        await ensure_topics(
            settings.kafka, topics.all(), settings.topic_partitions, settings.topic_durability
        )
        self._producer = durable_producer(settings.kafka, client_id="baton-router")
        await self._producer.start()
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=settings.webhook_timeout_seconds),
            connector=aiohttp.TCPConnector(limit=100, limit_per_host=0, resolver=self.targets),
        )
        self._dispatcher = Dispatcher(
            self.stores.outbox,
            self._producer,
            self.http,
            settings.retry_schedule_seconds,
            settings.dispatch_poll_seconds,
            per_endpoint=settings.webhook_concurrency,
            lease=timedelta(seconds=settings.outbox_lease_seconds),
            targets=settings.target_policy,
            box=settings.secret_box,
        )
        self._keys = await open_keys(settings)
        privacy = settings.privacy_keys
        self.erasures = Erasures(
            self._keys,
            self.erasure_store,
            lambda: self._producer,
            topics.erasures,
            privacy.id_key if privacy is not None else None,
        )
        drainer = QueueDrainer(self.stores, self._dispatcher, settings.drain_seconds)
        intake = Intake(
            self.stores,
            self._dispatcher,
            settings.max_reassignments,
            opener=self.erasures.open_transitions,
        )
        self.actions = RouterActions(
            self.stores, drainer, self._dispatcher, self._producer, topics.activity
        )
        transitions = make_consumer(
            settings.kafka, topics.group("baton-router"), topics.transitions
        )
        breaches = make_consumer(
            settings.kafka, topics.group("baton-router-escalation"), topics.sla
        )
        merges = make_consumer(settings.kafka, topics.group("baton-router-merges"), topics.merges)
        erasures = make_consumer(
            settings.kafka, topics.group("baton-router-erasures"), topics.erasures
        )
        self._consumers = [transitions, breaches, merges, erasures]
        for consumer in self._consumers:
            await consumer.start()
        retry, max_records = self.settings.consume_retry, self.settings.consume_batch
        routing = LanePipeline(  # express-lane SQLs decided ahead of the bulk
            transitions,
            self._producer,
            "baton-router",
            decode_transition,
            intake.route,
            retry=retry,
            max_records=max_records,
            lookahead=self.settings.lookahead,
        )
        escalation = ConsumePipeline(
            breaches,
            self._producer,
            "baton-router-escalation",
            decode_breach,
            each(intake.escalate),
            retry=retry,
            max_records=max_records,
            after_batch=self._dispatcher.wake,
        )
        merging = ConsumePipeline(
            merges,
            self._producer,
            "baton-router-merges",
            decode_merge,
            intake.merge,
            retry=retry,
            max_records=max_records,
            after_batch=self._dispatcher.wake,  # a rep told a merge closed their lead
        )
        erasing = ConsumePipeline(
            erasures,
            self._producer,
            "baton-router-erasures",
            decode_resolved,
            self.erasures.apply,
            retry=retry,
            max_records=max_records,
            after_batch=self._dispatcher.wake,  # a rep told an erased lead left them
        )
        self.supervisor.start("merges", merging.run)
        self.supervisor.start("erasures", erasing.run)
        self.supervisor.start("dispatcher", self._dispatcher.run)
        self.supervisor.start("consumer", routing.run)
        self.supervisor.start("escalation", escalation.run)
        self.supervisor.start("drain", drainer.run)
        log.info("router_started", topic=topics.transitions)

    async def stop(self) -> None:
        """Stop within bounded time: the background tasks, then each client, get
        ``STOP_SECONDS`` to end or close cleanly (a broker that does not answer must not
        hang shutdown; offsets not committed are re-delivered, which routing absorbs)."""
        await self.supervisor.stop(STOP_SECONDS)
        if self._dispatcher is not None:
            await self._dispatcher.stop()
        closers = [consumer.stop() for consumer in self._consumers]
        if self._producer is not None:
            closers.append(self._producer.stop())
        if self.http is not None:
            closers.append(self.http.close())
        if self._keys is not None:
            closers.append(self._keys.close())
        for closer in closers:
            try:
                await asyncio.wait_for(closer, STOP_SECONDS)
            except (TimeoutError, Exception) as exc:
                log.warning("router_stop_slow", error=f"{type(exc).__name__}: {exc}")
        await self.engine.dispose()

    async def readiness(self) -> dict[str, bool]:
        db_ok, kafka_ok = await asyncio.gather(
            database_answers(self.engine), kafka_answers(self.settings.kafka)
        )
        return {"database": db_ok, "kafka": kafka_ok}
