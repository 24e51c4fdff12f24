"""Running a real scorer worker process against the real broker, for integration tests."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from baton_devstack.ports import free_port
from baton_devstack.services import SERVICES, ServiceProcess
from baton_scorer.app import internal_topics
from baton_scorer.config import ScorerSettings
from baton_shared.kafka import durable_producer, ensure_topics
from baton_shared.schemas import LeadEvent

SCORER = next(s for s in SERVICES if s.name == "scorer")


def scorer_env(bootstrap: str, workdir: Path, rules_file: Path | None = None) -> dict[str, str]:
    prefix = f"sc{uuid.uuid4().hex[:8]}."
    env = {
        "BATON_ENV": "test",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "BATON_TOPIC_PREFIX": prefix,
        "BATON_TOPIC_PARTITIONS": "3",
        "BATON_SCORER_DATA_DIR": str(workdir / "scorer"),
        "BATON_LOG_FORMAT": "console",
        "BATON_LOG_LEVEL": os.environ.get("BATON_TEST_WORKER_LOG_LEVEL", "WARNING"),
    }
    if rules_file is not None:
        env["BATON_SCORER_RULES_FILE"] = str(rules_file)
    return env


async def rules_worker_env(
    bootstrap: str, workdir: Path, rules: str
) -> tuple[dict[str, str], Path]:
    """The environment of a worker reading ``rules`` from ``workdir/rules.yaml`` (returned
    too: for its version, or to edit it), on a fresh topic prefix whose topics exist."""
    rules_file = workdir / "rules.yaml"
    rules_file.write_text(rules)
    env = scorer_env(bootstrap, workdir, rules_file)
    await create_topics(env)
    return env, rules_file


def start_worker(env: dict[str, str], log_path: Path) -> ServiceProcess:
    proc = ServiceProcess(SCORER, env, log_path, free_port())
    proc.start()
    try:
        proc.wait_ready()
    except BaseException:
        proc.kill()  # never leave a worker behind when the test fails here
        raise
    return proc


async def create_topics(env: dict[str, str]) -> None:
    settings = ScorerSettings.model_validate(env)
    await ensure_topics(
        env["KAFKA_BOOTSTRAP_SERVERS"],
        [*settings.topics.all(), *internal_topics(settings)],
        settings.topic_partitions,
    )


def event(
    event_id: str,
    lead_id: str,
    type: str = "track",
    at: datetime | None = None,
    **fields: Any,
) -> LeadEvent:
    when = at or datetime.now(UTC)
    return LeadEvent(
        event_id=event_id,
        lead_id=lead_id,
        type=type,
        occurred_at=when,
        received_at=when,
        source="test",
        **fields,
    )


async def produce(bootstrap: str, topic: str, records: Iterable[LeadEvent | tuple[str, bytes]]):
    producer = durable_producer(bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = []
        for record in records:
            if isinstance(record, LeadEvent):
                key, value = record.lead_id.encode(), record.to_bytes()
            else:
                key, value = record[0].encode(), record[1]
            futures.append(await producer.send(topic, value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def wait_until(predicate, timeout: float, what: str, interval: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The worker's /metrics as {(sample name, sorted labels): value}."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{url}/metrics")).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(metrics: dict, name: str, **labels: str) -> float | None:
    return metrics.get((name, tuple(sorted(labels.items()))))


async def healthz(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{url}/healthz")).json()
