"""A rolling restart of two scorer workers: one SIGTERMed, started again and ready while
a new lead requests a demo every 0.2 s. The stopping worker leaves the group at once, so
the other takes its partitions over (warm, from its standby copy) without waiting out
the session (30 s here): every new lead's SQL transition arrives within seconds, once
by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from baton_devstack.services import ServiceProcess
from tests.scorer.test_kill import Collector
from tests.scorer.test_scale_out import PARTITIONS, events_partitions
from tests.scorer.worker import create_topics, event, produce, scorer_env, start_worker, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("BATON_SCORER_CORE") == "python",
        reason="handing partitions over does not depend on the scoring core",
    ),
]

SESSION_SECONDS = 30  # a worker gone without leaving would hold its partitions this long
PAUSE_LIMIT_SECONDS = 10


class Arrivals(Collector):
    """The transitions topic, with when each lead's first transition arrived."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(bootstrap, topic)
        self.arrived: dict[str, float] = {}

    async def _run(self) -> None:
        async for record in self.consumer:
            transition = orjson.loads(record.value)
            self.records.append(transition)
            self.arrived.setdefault(transition["lead_id"], time.monotonic())


async def test_a_rolling_restart_pauses_scoring_for_seconds_not_a_session(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = scorer_env(kafka_bootstrap, tmp_path) | {
        "BATON_SCORER_SESSION_TIMEOUT_SECONDS": str(SESSION_SECONDS)
    }
    prefix = env["BATON_TOPIC_PREFIX"]
    events, group = f"{prefix}leads.events", f"{prefix}baton-scorer"
    await create_topics(env)
    sent: dict[str, tuple[str, float]] = {}  # lead -> (event id, sent at)

    async def shared_by_two() -> bool:
        held = await events_partitions(kafka_bootstrap, group, events)
        return len(held) == 2 and all(held) and set().union(*held) == PARTITIONS

    async def demos() -> None:
        for n in range(10_000):
            lead = f"new-{n}"
            demo = event(f"demo-{n}", lead, "track", datetime.now(UTC), name="Demo Requested")
            await produce(kafka_bootstrap, events, [demo])
            sent[lead] = (demo.event_id, time.monotonic())
            await asyncio.sleep(0.2)

    workers: list[ServiceProcess] = []
    async with Arrivals(kafka_bootstrap, f"{prefix}leads.transitions") as seen:
        try:
            workers += await asyncio.gather(
                *(asyncio.to_thread(start_worker, env, tmp_path / f"{n}.log") for n in range(2))
            )
            await wait_until(shared_by_two, 60, "two workers sharing the partitions")
            probing = asyncio.create_task(demos())
            try:
                await wait_until(lambda: _some(sent, 5), 30, "the first demo requests")
                await asyncio.to_thread(workers[0].stop)
                workers[0] = await asyncio.to_thread(start_worker, env, tmp_path / "again.log")
                await wait_until(shared_by_two, 60, "the two sharing the partitions again")
                count = len(sent)
                await wait_until(lambda: _some(sent, count + 10), 30, "demo requests after")
            finally:
                probing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await probing

            async def all_arrived() -> bool:
                return set(sent) <= set(seen.arrived)

            await wait_until(all_arrived, 60, "every new lead's transition")
        finally:
            for worker in workers:
                worker.stop()

    seen.assert_exactly({(lead, "sql", event_id) for lead, (event_id, _) in sent.items()})
    waits = {lead: seen.arrived[lead] - at for lead, (_, at) in sent.items()}
    longest = max(waits.values())
    print(f"{len(sent)} demo requests across the restart; longest wait {longest:.2f} s")
    assert longest < PAUSE_LIMIT_SECONDS, sorted(waits.values())[-5:]


async def _some(sent: dict, count: int) -> bool:
    return len(sent) >= count
