"""The router's consume pipeline on the real broker and database: a transition routing
can never store goes to the DLQ after bounded retries while the one behind it is routed;
a database outage stalls routing and loses no transition."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook

from baton_devstack.webhook_sink import WebhookReceiver
from baton_router.config import RouterSettings
from baton_router.service import RouterService
from baton_router.signing import new_secret
from baton_router.tables import Rep
from baton_shared.schemas import Stage, Transition
from baton_shared.topics import dlq
from tests.support.kafka import read_all, wait_for_record
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until
from tests.support.webhooks import next_delivery

pytestmark = pytest.mark.integration

CONSUMER = "baton-router"
#: In UTC, before year 1: PostgreSQL is never handed the assignment's qualified_at.
BEFORE_TIME = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))


def sql_transition(occurred_at: datetime) -> Transition:
    return Transition(
        transition_id=uuid.uuid4().hex,
        lead_id=f"lead-{uuid.uuid4().hex[:8]}",
        from_stage=Stage.MQL,
        to_stage=Stage.SQL,
        score=91.0,
        fit=45.0,
        engagement=46.0,
        reason="demo requested",
        express=True,
        trigger_event_id=f"evt-{uuid.uuid4().hex[:8]}",
        occurred_at=occurred_at,
        rules_version="test",
    )


def failures(transient: bool) -> float:
    labels = {"consumer": CONSUMER, "transient": str(transient).lower()}
    return REGISTRY.get_sample_value("baton_consumer_handler_failures_total", labels) or 0.0


@pytest.fixture
async def database(pg_cluster, unique_name: str) -> AsyncIterator[tuple[str, TcpProxy]]:
    """The test's database, and a proxy in front of it that can cut the router off."""
    url = pg_cluster.create_database(unique_name)
    proxy = TcpProxy.for_url(url)
    await proxy.start()
    yield url, proxy
    await proxy.cut()


@pytest.fixture
async def router(kafka_bootstrap: str, database, unique_name: str) -> AsyncIterator[RouterService]:
    url, proxy = database
    service = RouterService(
        RouterSettings(**{
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DATABASE_URL": proxy.url_through(url),
            "BATON_TOPIC_PREFIX": f"{unique_name}.",
            "BATON_ENV": "test",
            "BATON_DISPATCH_POLL_SECONDS": "0.1",
            "BATON_WEBHOOK_TIMEOUT": "5",
            "BATON_ROUTER_CONSUME_MAX_ATTEMPTS": "3",
            "BATON_ROUTER_CONSUME_BACKOFF_SECONDS": "0.05",
            "BATON_ROUTER_CONSUME_MAX_BACKOFF_SECONDS": "0.2",
        })
    )
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as started:
        yield started


async def add_rep(router: RouterService, receiver: WebhookReceiver) -> Rep:
    assert router.actions is not None
    secret = new_secret()
    rep = await router.actions.create_rep("Ada", "ada@example.com", receiver.url + "/hook", secret)
    rep.webhook_secret = secret  # stored sealed; the tests verify with the secret in clear
    return rep


async def send(producer, router: RouterService, transition: Transition, key: str):  # type: ignore[no-untyped-def]
    topic = router.settings.topics.transitions
    return await producer.send_and_wait(topic, transition.to_bytes(), key=key.encode())


async def test_a_transition_routing_always_refuses_goes_to_the_dlq_and_the_next_is_routed(
    router, producer, receiver, kafka_bootstrap
) -> None:
    rep = await add_rep(router, receiver)
    poison = sql_transition(BEFORE_TIME)
    normal = sql_transition(datetime.now(UTC))

    sent = await send(producer, router, poison, poison.lead_id)
    await send(producer, router, normal, poison.lead_id)  # same partition, behind it

    delivery = await next_delivery(receiver, timeout=15)
    data = Webhook(rep.webhook_secret).verify(delivery.body, delivery.headers)["data"]
    assert data["transition_id"] == normal.transition_id
    topic = dlq(router.settings.topics.transitions)
    [letter] = await wait_for_record(kafka_bootstrap, topic, lambda r: True, timeout=15)
    assert (letter["partition"], letter["offset"]) == (sent.partition, sent.offset)
    assert letter["consumer"] == CONSUMER
    assert poison.transition_id in letter["value"]
    assert "date value out of range" in letter["error"]


async def test_a_database_outage_stalls_routing_and_loses_no_transition(
    router, producer, receiver, kafka_bootstrap, database
) -> None:
    _, proxy = database
    rep = await add_rep(router, receiver)
    await proxy.cut()
    before = failures(transient=True), failures(transient=False)
    transition = sql_transition(datetime.now(UTC))

    await send(producer, router, transition, transition.lead_id)

    async def retried_through_the_outage() -> bool:
        return failures(transient=True) >= before[0] + 8

    await wait_until(retried_through_the_outage, "retries while the database is down", 30)
    assert failures(transient=False) == before[1]
    await proxy.restore()
    delivery = await next_delivery(receiver, timeout=30)
    data = Webhook(rep.webhook_secret).verify(delivery.body, delivery.headers)["data"]
    assert data["transition_id"] == transition.transition_id
    assert await read_all(kafka_bootstrap, dlq(router.settings.topics.transitions), 0.5) == []
