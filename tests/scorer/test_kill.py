"""SIGKILL the scorer mid-stream several times: no transition is lost, none is ambiguous.

The first and third restarts find the worker's RocksDB store as the killed worker left
it and read only the changelog records it lacks; the second finds the data directory
deleted (a new disk) and recovers the tables from the changelog alone.

The guarantee under test is at-least-once delivery with a deterministic id: after
the crashes every expected transition is on ``leads.transitions`` and every copy of
it carries the same ``transition_id`` = stable_id(lead, stage, trigger event). The
router dedups on that id (primary key), so a re-emitted copy is harmless. The test
counts the copies to show what a consumer without dedup would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from baton_shared.ids import stable_id
from tests.scorer.worker import create_topics, event, produce, scorer_env, start_worker, wait_until

pytestmark = pytest.mark.integration

LEADS = 400
NOISE_PER_ROUND = 4_000
KILLS = 3


class Collector:
    """Reads the transitions topic in the background."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        self.records: list[dict] = []
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> Collector:
        await self.consumer.start()
        self.task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        async for record in self.consumer:
            self.records.append(orjson.loads(record.value))

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.consumer.stop()

    def distinct(self) -> int:
        return len({r["transition_id"] for r in self.records})

    def assert_exactly(self, expected: set[tuple[str, str, str]]) -> int:
        """The transitions seen are the ``expected`` (lead, stage, trigger event) triples,
        each under its one deterministic ``transition_id``; returns the re-emitted copies."""
        by_id: dict[str, set[tuple[str, str, str]]] = {}
        for r in self.records:
            triple = (r["lead_id"], r["to_stage"], r["trigger_event_id"])
            assert r["transition_id"] == stable_id(*triple)
            by_id.setdefault(r["transition_id"], set()).add(triple)
        assert set().union(*by_id.values()) == expected
        assert len(by_id) == len(expected)
        assert all(len(triples) == 1 for triples in by_id.values())
        return len(self.records) - len(expected)


async def test_sigkill_mid_stream_loses_nothing_and_ids_are_deterministic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = scorer_env(kafka_bootstrap, tmp_path)
    prefix = env["BATON_TOPIC_PREFIX"]
    await create_topics(env)
    now = datetime.now(UTC)
    records = []
    for round_ in range(3):  # three pricing views (40 each): MQL at the 2nd, SQL at the 3rd
        for i in range(LEADS):
            records.append(
                event(f"p{i}-{round_}", f"lead-{i}", "page", now, page_category="pricing")
            )
        for n in range(NOISE_PER_ROUND):
            records.append(
                event(f"n{round_}-{n}", f"noise-{n % 997}", "track", now, name="Heartbeat")
            )
    await produce(kafka_bootstrap, f"{prefix}leads.events", records)
    expected = {
        (f"lead-{i}", stage, f"p{i}-{r}")
        for i in range(LEADS)
        for stage, r in (("mql", 1), ("sql", 2))
    }

    async with Collector(kafka_bootstrap, f"{prefix}leads.transitions") as seen:
        for k in range(1, KILLS + 1):
            if k == 2:
                shutil.rmtree(env["BATON_SCORER_DATA_DIR"])
            worker = start_worker(env, tmp_path / f"scorer-{k}.log")

            async def progressed(k: int = k) -> bool:
                return seen.distinct() >= k * len(expected) // (KILLS + 1)

            try:
                await wait_until(progressed, 90, f"progress before kill {k}", interval=0.05)
            finally:
                worker.kill()
        worker = start_worker(env, tmp_path / "scorer-final.log")
        try:

            async def complete() -> bool:
                return seen.distinct() >= len(expected)

            await wait_until(complete, 120, "every expected transition")
            await asyncio.sleep(2)  # anything still in flight would show up as an extra
        finally:
            worker.stop()

    copies = seen.assert_exactly(expected)
    print(f"{len(expected)} transitions, {copies} re-emitted copies after {KILLS} SIGKILLs")
