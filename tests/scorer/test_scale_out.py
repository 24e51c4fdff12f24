"""Scale-out: two, then three scorer workers share the topics' partitions; one is
SIGKILLed mid-stream. Every expected transition appears, each with one deterministic
``transition_id`` (a re-emitted copy carries the same id), and the killed worker's
partitions are shared out among the two left.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from baton_devstack.services import ServiceProcess
from baton_shared.kafka import admin_client
from tests.scorer.test_kill import Collector
from tests.scorer.worker import create_topics, event, produce, scorer_env, start_worker, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("BATON_SCORER_CORE") == "python",
        reason="sharing partitions does not depend on the scoring core: one run is enough",
    ),
]

LEADS = 300
NOISE_PER_ROUND = 1_500
PARTITIONS = {0, 1, 2}


async def events_partitions(bootstrap: str, group: str, topic: str) -> list[set[int]]:
    """The partitions of ``topic`` each member of consumer group ``group`` holds."""
    admin = admin_client(bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        (described,) = response.to_object()["groups"]
        if described["state"] != "Stable":
            return []
        return [
            {
                tp.partition
                for tp in ConsumerProtocolMemberAssignment.decode(
                    m["member_assignment"]
                ).partitions()
                if tp.topic == topic
            }
            for m in described["members"]
        ]
    finally:
        await admin.close()


async def test_three_workers_share_the_partitions_and_survive_losing_one(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = scorer_env(kafka_bootstrap, tmp_path) | {"BATON_SCORER_SESSION_TIMEOUT_SECONDS": "6"}
    prefix = env["BATON_TOPIC_PREFIX"]
    events, group = f"{prefix}leads.events", f"{prefix}baton-scorer"
    await create_topics(env)
    now = datetime.now(UTC)

    def round_(r: int) -> list:  # a pricing view (40) per lead: MQL at the 2nd, SQL at the 3rd
        return [
            event(f"p{i}-{r}", f"lead-{i}", "page", now, page_category="pricing")
            for i in range(LEADS)
        ] + [
            event(f"n{r}-{n}", f"noise-{n % 499}", "track", now, name="Ping")
            for n in range(NOISE_PER_ROUND)
        ]

    expected = {
        (f"lead-{i}", stage, f"p{i}-{r}")
        for i in range(LEADS)
        for stage, r in (("mql", 1), ("sql", 2))
    }

    async def shared_by(workers: int) -> bool:
        held = await events_partitions(kafka_bootstrap, group, events)
        return len(held) == workers and all(held) and set().union(*held) == PARTITIONS

    workers: list[ServiceProcess] = []
    async with Collector(kafka_bootstrap, f"{prefix}leads.transitions") as seen:
        try:
            workers += [start_worker(env, tmp_path / f"scorer-{n}.log") for n in range(2)]
            await wait_until(lambda: shared_by(2), 60, "two workers sharing the partitions")
            await produce(kafka_bootstrap, events, round_(0) + round_(1))
            workers.append(start_worker(env, tmp_path / "scorer-2.log"))
            await wait_until(lambda: shared_by(3), 60, "three workers sharing the partitions")
            await produce(kafka_bootstrap, events, round_(2))

            async def some_sqls() -> bool:
                return sum(r["to_stage"] == "sql" for r in seen.records) >= LEADS // 10

            await wait_until(some_sqls, 90, "SQLs before the kill", interval=0.05)
            workers[1].kill()
            assert seen.distinct() < len(expected), "the stream was over before the kill"
            await wait_until(lambda: shared_by(2), 60, "the two left sharing the partitions")

            async def complete() -> bool:
                return seen.distinct() >= len(expected)

            await wait_until(complete, 90, "every expected transition")
        finally:
            for worker in workers:
                worker.stop()

    copies = seen.assert_exactly(expected)
    print(f"{len(expected)} transitions, {copies} re-emitted copies after one SIGKILL")
