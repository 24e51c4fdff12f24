"""The router's express lane on the real broker and database: with a backlog of bulk
transitions unrouted ahead of it, an express-lane SQL is assigned and its signed webhook
sent while most of the backlog still waits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from baton_devstack.webhook_sink import WebhookReceiver
from baton_router.config import RouterSettings
from baton_router.service import RouterService
from baton_router.signing import new_secret
from baton_shared.database import make_engine
from baton_shared.kafka import ensure_topics
from baton_shared.producer import partition_for, send_batched
from baton_shared.schemas import Stage, Transition
from tests.support.webhooks import next_delivery

pytestmark = pytest.mark.integration

BACKLOG = 6000


def transition(lead_id: str, to_stage: Stage, express: bool) -> Transition:
    return Transition(
        transition_id=uuid.uuid4().hex,
        lead_id=lead_id,
        from_stage=Stage.NEW,
        to_stage=to_stage,
        score=60.0,
        fit=20.0,
        engagement=40.0,
        reason="demo requested" if express else "score over the MQL threshold",
        express=express,
        trigger_event_id=uuid.uuid4().hex,
        occurred_at=datetime.now(UTC),
        rules_version="test",
    )


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as started:
        yield started


async def test_an_express_sql_is_routed_ahead_of_a_bulk_backlog(
    router_env: dict[str, str], producer, receiver: WebhookReceiver, db_url: str
) -> None:
    topic = f"{router_env['BATON_TOPIC_PREFIX']}leads.transitions"
    await ensure_topics(router_env["KAFKA_BOOTSTRAP_SERVERS"], [topic], 3)
    # The backlog, MQLs in every partition, then the demo request's SQL behind them.
    bulk = [transition(f"bulk-{i}", Stage.MQL, express=False) for i in range(BACKLOG)]
    demo = transition("demo-lead", Stage.SQL, express=True)
    partitions = sorted(await producer.partitions_for(topic))
    records = [
        (partition_for(t.lead_id.encode(), partitions), t.lead_id.encode(), t.to_bytes())
        for t in [*bulk, demo]
    ]
    for start in range(0, len(records), 1000):
        for future in await send_batched(producer, topic, records[start : start + 1000]):
            await future

    service = RouterService(RouterSettings(**router_env))  # type: ignore[arg-type]
    await service.start()
    try:
        assert service.actions is not None  # (a demo routed before the rep exists queues)
        secret = new_secret()
        await service.actions.create_rep("Ada", "ada@example.com", receiver.url + "/h", secret)
        delivery = await next_delivery(receiver, timeout=60)
        data = Webhook(secret).verify(delivery.body, delivery.headers)["data"]
        assert data["lead_id"] == "demo-lead"
    finally:
        await service.stop()

    engine = make_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            before_demo = await conn.scalar(
                text(
                    "SELECT count(*) FROM router.routed_transitions WHERE lead_id <> 'demo-lead'"
                    " AND received_at < (SELECT received_at FROM router.routed_transitions"
                    " WHERE lead_id = 'demo-lead')"
                )
            )
    finally:
        await engine.dispose()
    assert before_demo < BACKLOG / 2, f"{before_demo} of {BACKLOG} bulk routed before the demo"
