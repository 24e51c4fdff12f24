"""Exactly once with two routers: two real router processes share the topic and the
database; one is SIGKILLed mid-stream. Every SQL is assigned exactly once, no rep goes
over capacity, and every assignment reaches its rep as a verified webhook."""

from __future__ import annotations

import asyncio
import queue
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from baton_devstack.ports import free_port
from baton_devstack.services import SERVICES, ServiceProcess
from baton_devstack.webhook_sink import WebhookReceiver
from baton_shared.database import make_engine
from baton_shared.schemas import Stage, Transition
from tests.support.kafka import read_all

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ADMIN = "kill-test-admin-token-0123456789"
SQLS = 120
KILL_AFTER = 40
CAPACITIES = (10, 25, 40, 50)  # 125 slots for 120 SQLs: the small reps fill up


def router_spec():  # type: ignore[no-untyped-def]
    return next(s for s in SERVICES if s.name == "router")


@pytest.fixture
def routers(
    kafka_bootstrap: str, pg_cluster, unique_name: str, tmp_path: Path
) -> Iterator[tuple[list[ServiceProcess], dict[str, str]]]:
    env = {
        "BATON_ENV": "test",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": pg_cluster.create_database(unique_name),
        "BATON_TOPIC_PREFIX": f"{unique_name}.",
        "BATON_ADMIN_TOKEN": ADMIN,
        "BATON_WEBHOOK_RETRY_SCHEDULE": "0.2,0.5,1,2",
        "BATON_DISPATCH_POLL_SECONDS": "0.1",
        "BATON_WEBHOOK_TIMEOUT": "2",
        "BATON_OUTBOX_LEASE_SECONDS": "4",
        "BATON_ROUTER_DRAIN_SECONDS": "1",
        "BATON_LOG_FORMAT": "console",
    }
    procs = [
        ServiceProcess(router_spec(), env, tmp_path / f"router-{i}.log", free_port())
        for i in range(2)
    ]
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.wait_ready()
        yield procs, env
    finally:
        for proc in procs:
            proc.stop()


def sql(n: int) -> Transition:
    return Transition(
        transition_id=f"kill-{n}-{uuid.uuid4().hex[:8]}",
        lead_id=f"lead-{n}",
        from_stage=Stage.MQL,
        to_stage=Stage.SQL,
        score=110,
        fit=40,
        engagement=70,
        reason="pricing",
        express=n % 3 == 0,
        trigger_event_id=f"evt-{n}",
        trigger_event="Pricing Viewed",
        occurred_at=datetime.now(UTC),
        rules_version="test",
    )


async def test_sigkill_of_one_router_mid_stream_assigns_every_sql_exactly_once(routers) -> None:
    (first, second), env = routers
    topic = f"{env['BATON_TOPIC_PREFIX']}leads.transitions"
    by_id: dict[str, dict] = {}
    truncated = 0
    with WebhookReceiver() as receiver:
        reps = {}
        async with httpx.AsyncClient(timeout=10) as http:
            for i, capacity in enumerate(CAPACITIES):
                response = await http.post(
                    f"{second.url}/v1/reps",
                    headers={"Authorization": f"Bearer {ADMIN}"},
                    json={
                        "name": f"Rep {i}",
                        "email": f"rep{i}@example.com",
                        "webhook_url": f"{receiver.url}/rep{i}",
                        "capacity": capacity,
                    },
                )
                assert response.status_code == 201, response.text
                reps[response.json()["id"]] = response.json()

        producer = AIOKafkaProducer(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"], acks="all")
        await producer.start()
        try:
            sent = [sql(n) for n in range(SQLS)]
            for n, transition in enumerate(sent):
                if n == KILL_AFTER:
                    first.kill()  # SIGKILL: no shutdown, no commit, leases left behind
                await producer.send_and_wait(
                    topic, transition.to_bytes(), key=transition.lead_id.encode()
                )
                await asyncio.sleep(0.01)
        finally:
            await producer.stop()

        ids = {t.transition_id for t in sent}
        engine = make_engine(env["DATABASE_URL"], pool_size=1)
        try:
            async with asyncio.timeout(90):
                while True:
                    async with engine.connect() as conn:
                        assigned = (
                            await conn.execute(
                                text("SELECT transition_id, rep_id::text FROM router.assignments")
                            )
                        ).all()
                    if {t for t, _ in assigned} >= ids:
                        break
                    await asyncio.sleep(0.2)
            # Every assignment's webhook arrives (at least once; repeats share webhook-id).
            # A request cut off by the SIGKILL arrives truncated: it does not verify, and
            # the lease expiry sends it again in full.
            async with asyncio.timeout(120):
                while len(by_id) < SQLS:
                    try:
                        delivery = await asyncio.to_thread(receiver.deliveries.get, timeout=1)
                    except queue.Empty:
                        continue
                    try:
                        data = orjson.loads(delivery.body)["data"]
                        secret = reps[data["rep_id"]]["webhook_secret"]
                        Webhook(secret).verify(delivery.body, delivery.headers)
                    except (orjson.JSONDecodeError, WebhookVerificationError):
                        truncated += 1
                        continue
                    by_id.setdefault(delivery.headers["webhook-id"], data)
        finally:
            await engine.dispose()

    assert second.process is not None and second.process.poll() is None, second.log_tail()
    per_transition = Counter(t for t, _ in assigned)
    assert set(per_transition) == ids
    assert all(n == 1 for n in per_transition.values()), per_transition.most_common(3)
    load = Counter(rep for _, rep in assigned)
    for rep_id, rep in reps.items():
        assert load[rep_id] <= rep["capacity"], (rep_id, load[rep_id], rep["capacity"])

    assert Counter(d["transition_id"] for d in by_id.values()) == dict.fromkeys(ids, 1)
    assert truncated <= 5  # only requests in flight at the kill

    published = await read_all(
        env["KAFKA_BOOTSTRAP_SERVERS"], f"{env['BATON_TOPIC_PREFIX']}leads.assignments"
    )
    # The outbox is at-least-once too: a record may repeat, never with a different rep.
    decided = {(r["transition_id"], r["assignment_id"], r["rep_id"]) for r in published}
    assert Counter(t for t, _, _ in decided) == dict.fromkeys(ids, 1)
