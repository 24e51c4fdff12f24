"""A broker lost under load: the four services on a three-broker cluster (every topic
replicated 3 times, ``min.insync.replicas`` 2), ingest under steady load, the leader of
the busiest ``leads.events`` partition SIGKILLed mid-run and restarted.

Every event ingest acknowledged (2xx) is on ``leads.events``; SQLs made after the kill
are scored, assigned (each exactly once, by ``transition_id``) and get an SLA clock;
the restarted broker rejoins every partition's ISR. The pause clients saw is printed.
Skip it locally with ``-m "not cluster"``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from baton_devstack.kafka_cluster import KafkaCluster
from baton_devstack.ports import free_port
from baton_devstack.services import SERVICES, ServiceProcess, start_services, stop_services
from baton_devstack.webhook_sink import WebhookReceiver
from baton_shared.kafka import admin_client
from tests.cluster.load import Load, pause, steady_load
from tests.scorer.test_kill import Collector
from tests.support.kafka import read_all
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.integration, pytest.mark.e2e]

ADMIN = "failover-admin-token-0123456789"
WRITE_KEY = "failover-write-key"
EVENTS = 2_400
RATE = 200  # requests (one event each) per second: about 12 s of load
DEMO_EVERY = 12  # every 12th event is a demo request: an express SQL at once
KILL_AT_ACKS = EVENTS // 5
RESTART_AFTER_ACKS = 300  # acks after the kill: clients carried on without the broker


class Stack:
    def __init__(self, services: list[ServiceProcess], prefix: str) -> None:
        self.by_name = {s.spec.name: s for s in services}
        self.prefix = prefix

    def url(self, name: str) -> str:
        return self.by_name[name].url

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"


@pytest.fixture(scope="module")
def stack(
    kafka_cluster: KafkaCluster, pg_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    name = f"fo{uuid.uuid4().hex[:8]}"
    workdir: Path = tmp_path_factory.mktemp(name)
    env = {
        "BATON_ENV": "test",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_cluster.bootstrap_servers,
        "BATON_TOPIC_REPLICATION_FACTOR": "3",
        "BATON_TOPIC_MIN_INSYNC_REPLICAS": "2",
        "DATABASE_URL": pg_cluster.create_database(name),
        "BATON_TOPIC_PREFIX": f"{name}.",
        "BATON_ADMIN_TOKEN": ADMIN,
        "BATON_INGEST_WRITE_KEYS": WRITE_KEY,
        "BATON_SCORER_DATA_DIR": str(workdir / "scorer"),
        "BATON_LOG_FORMAT": "console",
        "BATON_LOG_LEVEL": "WARNING",
    }
    services = start_services(env, workdir / "logs", {spec.name: free_port() for spec in SERVICES})
    try:
        yield Stack(services, f"{name}.")
    finally:
        stop_services(services)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        yield client


def event(i: int) -> dict[str, Any]:
    """The i-th event of the load: a demo request by a new lead, or a pointless ping."""
    if i % DEMO_EVERY == 0:
        return {"userId": f"demo-{i}", "event": "Demo Requested", "messageId": f"m{i}"}
    return {"userId": f"reader-{i % 97}", "event": "Ping", "messageId": f"m{i}"}


async def until(condition: Callable[[], bool], what: str, timeout: float) -> None:
    async def holds() -> bool:
        return condition()

    await wait_until(holds, what, timeout)


async def busiest_leader(bootstrap: str, topic: str) -> tuple[int, int]:
    """(leader node id, partition) of ``topic``'s partition holding the most records."""
    admin = admin_client(bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        (described,) = await admin.describe_topics([topic])
        leaders = {p["partition"]: p["leader"] for p in described["partitions"]}
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in leaders])
        busiest = max(ends, key=lambda tp: ends[tp]).partition
        return leaders[busiest], busiest
    finally:
        await consumer.stop()
        await admin.close()


async def replicas(bootstrap: str, prefix: str) -> dict[str, list[tuple[int, int]]]:
    """Each of the stack's topics: (replicas, in-sync replicas) per partition."""
    admin = admin_client(bootstrap)
    await admin.start()
    try:
        return {
            t["topic"]: [(len(p["replicas"]), len(p["isr"])) for p in t["partitions"]]
            for t in await admin.describe_topics()
            if t["topic"].startswith(prefix)
        }
    finally:
        await admin.close()


@dataclass(frozen=True)
class Failover:
    """Which broker was killed (leading which partition), when, and its restart time."""

    leader: int
    partition: int
    killed_at: float
    acked_at_kill: int
    restart_s: float


async def kill_busiest_leader_mid_load(cluster: KafkaCluster, stack: Stack, load: Load) -> Failover:
    """Once the load is under way, SIGKILL the leader of the busiest ``leads.events``
    partition; once clients got acks without it, restart it and wait until it serves."""
    await until(lambda: load.acked >= KILL_AT_ACKS or load.refused, "load", 60)
    assert not load.refused, load.sent[-1]
    leader, partition = await busiest_leader(cluster.bootstrap_servers, stack.topic("leads.events"))
    killed_at = time.monotonic()
    cluster.node(leader).kill()
    acked_at_kill = load.acked
    await until(
        lambda: load.acked >= acked_at_kill + RESTART_AFTER_ACKS,
        "acks without the killed broker",
        60,
    )
    restart_began = time.monotonic()
    await asyncio.to_thread(cluster.node(leader).start)
    return Failover(leader, partition, killed_at, acked_at_kill, time.monotonic() - restart_began)


async def test_a_leader_sigkilled_under_load_loses_no_acknowledged_event(
    kafka_cluster: KafkaCluster, stack: Stack, http: httpx.AsyncClient
) -> None:
    bootstrap = kafka_cluster.bootstrap_servers
    with WebhookReceiver() as receiver:
        rep = await http.post(
            f"{stack.url('router')}/v1/reps",
            json={"name": "Ada", "email": "ada@example.com", "webhook_url": f"{receiver.url}/a"},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert rep.status_code == 201, rep.text
        async with (
            Collector(bootstrap, stack.topic("leads.transitions")) as transitions,
            Collector(bootstrap, stack.topic("leads.assignments")) as assignments,
            Collector(bootstrap, stack.topic("leads.sla")) as clocks,
        ):
            load = Load()
            sender = asyncio.create_task(
                steady_load(
                    http,
                    f"{stack.url('ingest')}/v1/track",
                    event,
                    EVENTS,
                    RATE,
                    load,
                    auth=(WRITE_KEY, ""),
                )
            )
            try:
                failover = await kill_busiest_leader_mid_load(kafka_cluster, stack, load)
                await sender
            finally:
                sender.cancel()  # a failed wait leaves no request behind
            acked = [s for s in load.sent if s.acked]
            demos = {s.body["userId"] for s in acked if s.sent_at > failover.killed_at}
            demos &= {f"demo-{i}" for i in range(0, EVENTS, DEMO_EVERY)}
            assert demos, "no demo request was acknowledged after the kill"

            def sqls() -> dict[str, str]:
                return {
                    t["transition_id"]: t["lead_id"]
                    for t in transitions.records
                    if t["to_stage"] == "sql"
                }

            def sql_assignments() -> list[dict[str, Any]]:
                return [a for a in assignments.records if a["stage"] == "sql"]

            def assigned() -> set[str]:
                return {a["transition_id"] for a in sql_assignments()}

            await until(
                lambda: demos <= set(sqls().values()) and set(sqls()) <= assigned(),
                "every SQL made after the kill scored and assigned",
                90,
            )
            await until(
                lambda: demos <= {c["lead_id"] for c in clocks.records},
                "an SLA clock for every lead assigned after the kill",
                60,
            )

    on_topic = {e["event_id"] for e in await read_all(bootstrap, stack.topic("leads.events"))}
    missing = {s.body["messageId"] for s in acked} - on_topic
    assert not missing, f"{len(missing)} acknowledged events lost"
    by_transition: dict[str, set[str]] = defaultdict(set)
    for a in sql_assignments():
        by_transition[a["transition_id"]].add(a["assignment_id"])
    assert set(by_transition) == set(sqls())
    assert all(len(ids) == 1 for ids in by_transition.values())

    async def all_in_sync() -> bool:
        topics = await replicas(bootstrap, stack.prefix)
        return bool(topics) and all(p == (3, 3) for ps in topics.values() for p in ps)

    await wait_until(all_in_sync, "the restarted broker back in every ISR", 60)
    figures = pause(load.sent)
    print(
        f"\nbroker {failover.leader} (leader of leads.events[{failover.partition}]) "
        f"SIGKILLed after {failover.acked_at_kill} acks, restarted and serving in "
        f"{failover.restart_s:.1f} s; "
        f"{len(acked)}/{EVENTS} events acked, {figures.rate:.0f} per second; {figures}; "
        f"{len(sqls())} SQLs assigned once each, {len(demos)} of them after the kill"
    )
    assert figures.not_acked < EVENTS // 10
