"""RouterService end to end on the real broker, the real database and a real HTTP receiver:
leads.transitions in, a signed webhook and a leads.assignments record out."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from baton_devstack.webhook_sink import Delivery, WebhookReceiver
from baton_router.config import RouterSettings
from baton_router.service import RouterService
from baton_router.signing import new_secret
from baton_router.tables import Rep
from baton_shared.schemas import Stage, Transition
from tests.support.kafka import read_all, wait_committed, wait_for_record
from tests.support.waiting import wait_until
from tests.support.webhooks import next_delivery, no_delivery

pytestmark = pytest.mark.integration

ROUTER_GROUP = "baton-router"


def sql_transition(lead_id: str | None = None, transition_id: str | None = None) -> Transition:
    return Transition(
        transition_id=transition_id or uuid.uuid4().hex,
        lead_id=lead_id or f"lead-{uuid.uuid4().hex[:8]}",
        from_stage=Stage.MQL,
        to_stage=Stage.SQL,
        score=91.0,
        fit=45.0,
        engagement=46.0,
        reason="demo requested",
        express=True,
        trigger_event_id=f"evt-{uuid.uuid4().hex[:8]}",
        trigger_event="Demo Requested",
        occurred_at=datetime.now(UTC),
        rules_version="test",
    )


@pytest.fixture
async def router(
    kafka_bootstrap: str, pg_cluster, unique_name: str
) -> AsyncIterator[RouterService]:
    settings = RouterSettings(**{
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": pg_cluster.create_database(unique_name),
        "BATON_TOPIC_PREFIX": f"{unique_name}.",
        "BATON_ENV": "test",
        "BATON_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2",
        "BATON_DISPATCH_POLL_SECONDS": "0.1",
        "BATON_WEBHOOK_TIMEOUT": "5",
    })
    service = RouterService(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., WebhookReceiver]]:
    started: list[WebhookReceiver] = []

    def make(**kwargs: Any) -> WebhookReceiver:
        receiver = WebhookReceiver(**kwargs).__enter__()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.__exit__(None, None, None)


async def send(producer: AIOKafkaProducer, topic: str, value: bytes, key: str) -> RecordMetadata:
    return await producer.send_and_wait(topic, value, key=key.encode())


async def wait_consumed(router: RouterService, sent: RecordMetadata, timeout: float = 15.0) -> None:
    """Until the router's group committed past ``sent`` (the consume loop commits only
    after every record of the batch was made durable)."""
    group = router.settings.topics.group(ROUTER_GROUP)
    await wait_committed(router.settings.kafka_bootstrap_servers, group, sent, timeout)


async def query(router: RouterService, sql: str, **params: object) -> list[tuple]:
    async with router.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]


async def outbox(router: RouterService, kind: str) -> list[tuple]:
    return await query(router, "SELECT status, attempts, last_error FROM router.outbox "
                               "WHERE kind = :kind ORDER BY id", kind=kind)


async def add_rep(router: RouterService, receiver: WebhookReceiver) -> Rep:
    assert router.actions is not None
    secret = new_secret()
    rep = await router.actions.create_rep("Ada", "ada@example.com", receiver.url + "/hook", secret)
    rep.webhook_secret = secret  # stored sealed; the tests verify with the secret in clear
    return rep


async def test_sql_transition_is_delivered_signed_and_published_once(
    router, producer, receiver_factory, kafka_bootstrap
):
    receiver = receiver_factory()
    rep = await add_rep(router, receiver)
    topics = router.settings.topics
    sql = sql_transition()

    await send(producer, topics.transitions, sql.to_bytes(), sql.lead_id)

    delivery = await next_delivery(receiver)
    payload = Webhook(rep.webhook_secret).verify(delivery.body, delivery.headers)
    assert delivery.path == "/hook"
    assert payload["type"] == "lead.assigned"
    data = payload["data"]
    assert (data["transition_id"], data["lead_id"], data["rep_id"]) == (
        sql.transition_id, sql.lead_id, str(rep.id))
    assert data["express"] is True
    assert delivery.headers["webhook-id"] == f"msg_{data['assignment_id']}"

    seen = await wait_for_record(
        kafka_bootstrap, topics.assignments, lambda r: r["transition_id"] == sql.transition_id,
        timeout=15,
    )
    assert seen[-1]["assignment_id"] == data["assignment_id"]
    assert seen[-1]["rep_id"] == str(rep.id)

    # The same transition again (a re-emission upstream): handled, but a no-op.
    duplicate = await send(producer, topics.transitions, sql.to_bytes(), sql.lead_id)
    await wait_consumed(router, duplicate)
    await no_delivery(receiver, within=1.0)  # ten dispatcher polls

    assert await query(router, "SELECT transition_id FROM router.assignments") == [
        (sql.transition_id,)]
    assert await outbox(router, "webhook") == [("delivered", 1, None)]
    assert await outbox(router, "kafka") == [("delivered", 1, None)]
    assigned = await read_all(kafka_bootstrap, topics.assignments, idle_s=1.0)
    assert [r["transition_id"] for r in assigned] == [sql.transition_id]


async def test_failed_webhook_is_retried_until_delivered(router, producer, receiver_factory):
    answers = iter([500])  # then 200

    def answer(_: Delivery) -> None:
        receiver.status = next(answers, 200)

    receiver = receiver_factory(on_delivery=answer)
    rep = await add_rep(router, receiver)
    sql = sql_transition()

    await send(producer, router.settings.topics.transitions, sql.to_bytes(), sql.lead_id)

    first = await next_delivery(receiver)
    second = await next_delivery(receiver, timeout=10)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # same message
    Webhook(rep.webhook_secret).verify(second.body, second.headers)

    async def delivered() -> list[tuple]:
        rows = await outbox(router, "webhook")
        return rows if rows and rows[0][0] == "delivered" else []

    [(status, attempts, last_error)] = await wait_until(delivered, "webhook delivered")
    assert (status, attempts, last_error) == ("delivered", 2, "HTTP 500")
    await no_delivery(receiver, within=0.5)


async def test_gone_webhook_disables_endpoint_and_kills_message(
    router, producer, receiver_factory
):
    receiver = receiver_factory(status=410)
    rep = await add_rep(router, receiver)
    sql = sql_transition()

    await send(producer, router.settings.topics.transitions, sql.to_bytes(), sql.lead_id)
    await next_delivery(receiver)

    async def dead() -> list[tuple]:
        rows = await outbox(router, "webhook")
        return rows if rows and rows[0][0] == "dead" else []

    [(status, attempts, last_error)] = await wait_until(dead, "webhook dead")
    assert (status, attempts) == ("dead", 1)
    assert "410" in (last_error or "")
    refreshed = await router.stores.config.get_rep(rep.id)
    assert refreshed is not None and refreshed.webhook_disabled_at is not None
    await no_delivery(receiver, within=0.5)  # not retried


async def test_poison_transition_goes_to_dlq_and_the_next_one_is_routed(
    router, producer, receiver_factory, kafka_bootstrap
):
    receiver = receiver_factory()
    rep = await add_rep(router, receiver)
    topics = router.settings.topics
    sql = sql_transition()

    # Same key, so same partition: the valid record sits behind the poison one.
    poison = await send(producer, topics.transitions, b"not json", sql.lead_id)
    await send(producer, topics.transitions, sql.to_bytes(), sql.lead_id)

    dead = await wait_for_record(
        kafka_bootstrap, f"{topics.transitions}.dlq", lambda r: r["offset"] == poison.offset,
        timeout=15,
    )
    letter = dead[-1]
    assert letter["source_topic"] == topics.transitions
    assert letter["partition"] == poison.partition
    assert letter["key"] == sql.lead_id
    assert letter["value"] == "not json"
    assert letter["consumer"] == ROUTER_GROUP
    assert "json" in letter["error"].lower()

    delivery = await next_delivery(receiver)
    data = Webhook(rep.webhook_secret).verify(delivery.body, delivery.headers)["data"]
    assert data["transition_id"] == sql.transition_id
    assert orjson.loads(delivery.body)["data"]["rep_id"] == str(rep.id)


async def test_a_transition_postgres_cannot_store_goes_to_dlq_not_a_stalled_router(
    router, producer, receiver_factory, kafka_bootstrap
):
    """Ingest accepts any JSON string in traits; PostgreSQL's JSONB refuses a NUL. Such a
    transition is poison: it must not stall routing for every lead behind it."""
    receiver = receiver_factory()
    rep = await add_rep(router, receiver)
    topics = router.settings.topics
    nul = sql_transition().model_copy(update={"traits": {"title": "CTO\x00"}})
    sql = sql_transition(lead_id=nul.lead_id)

    poison = await send(producer, topics.transitions, nul.to_bytes(), nul.lead_id)
    await send(producer, topics.transitions, sql.to_bytes(), sql.lead_id)

    dead = await wait_for_record(
        kafka_bootstrap, f"{topics.transitions}.dlq", lambda r: r["offset"] == poison.offset,
        timeout=15,
    )
    assert "NUL character" in dead[-1]["error"]
    delivery = await next_delivery(receiver)
    data = Webhook(rep.webhook_secret).verify(delivery.body, delivery.headers)["data"]
    assert data["transition_id"] == sql.transition_id
