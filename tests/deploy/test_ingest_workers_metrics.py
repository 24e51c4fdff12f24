"""Ingest with several worker processes: ``/metrics`` counts every worker's events, not
just those of the worker that happens to answer the scrape."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.ingest.conftest import WRITE_KEY, start_ingest

pytestmark = pytest.mark.integration

EVENTS = "baton_ingest_events_total"


def events_by_worker(directory: Path) -> dict[str, float]:
    """Events each worker process counted, from its own metric file."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        total = sum(
            sample.value
            for metric in MultiProcessCollector.merge([str(path)], accumulate=True)
            for sample in metric.samples
            if sample.name == EVENTS
        )
        if total:
            counts[path.stem.removeprefix("counter_")] = total
    return counts


def scraped_events(exposition: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{EVENTS}{{[^}}]*}} (\S+)$", exposition, re.M))


async def post_event(url: str) -> int:
    # A new connection per request, so the kernel hands requests to different workers.
    async with httpx.AsyncClient(timeout=10, headers={"Connection": "close"}) as client:
        response = await client.post(
            f"{url}/v1/track",
            auth=(WRITE_KEY, ""),
            json={"userId": "u-1", "event": "Load", "messageId": uuid.uuid4().hex},
        )
    return response.status_code


async def test_metrics_count_the_events_of_every_worker(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    proc = start_ingest(
        kafka_bootstrap,
        f"{unique_name}.",
        tmp_path,
        BATON_INGEST_WORKERS="3",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    accepted = 0
    try:
        deadline = time.monotonic() + 30
        while len(events_by_worker(metrics_dir)) < 2:
            assert time.monotonic() < deadline, "every request went to one worker"
            statuses = await asyncio.gather(*(post_event(proc.url) for _ in range(20)))
            assert set(statuses) == {200}, statuses
            accepted += len(statuses)
        assert sum(events_by_worker(metrics_dir).values()) == accepted
        async with httpx.AsyncClient(timeout=10, headers={"Connection": "close"}) as client:
            for _ in range(5):  # whichever worker answers, it reports them all
                response = await client.get(f"{proc.url}/metrics")
                assert scraped_events(response.text) == accepted
    finally:
        proc.stop()
