"""Fixtures for the SLA monitor's integration tests: per-test database and topics, a
monitor started in-process, and a producer for assignments and activity."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from baton_shared.kafka import ensure_topics
from baton_shared.topics import Topics
from baton_sla_monitor.config import SlaSettings
from baton_sla_monitor.service import SlaService

StartSla = Callable[..., Awaitable[SlaService]]


@pytest.fixture
def database_for_test(pg_cluster, unique_name: str) -> str:
    return pg_cluster.create_database(unique_name)


@pytest.fixture
def sla_env(kafka_bootstrap: str, database_for_test: str, unique_name: str) -> dict[str, str]:
    """The environment of a monitor for this test (also for one run as a process)."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_for_test,
        "BATON_TOPIC_PREFIX": f"{unique_name}.",
        "BATON_ENV": "test",
        "BATON_SLA_TICK_SECONDS": "0.05",
        "BATON_SLA_STATS_SECONDS": "0.5",
    }


@pytest.fixture
def settings_for(sla_env: dict[str, str]) -> Callable[..., SlaSettings]:
    def make(**overrides: Any) -> SlaSettings:
        return SlaSettings(**{**sla_env, **overrides})

    return make


@pytest.fixture
def topics(unique_name: str) -> Topics:
    return Topics(f"{unique_name}.")


@pytest.fixture
async def start_sla(settings_for) -> AsyncIterator[StartSla]:
    """``await start_sla(BATON_SLA_EXPRESS_SQL_SECONDS="2")``: a started monitor, stopped
    at teardown."""
    running: list[SlaService] = []

    async def start(**overrides: Any) -> SlaService:
        service = SlaService(settings_for(**overrides))
        await service.start()
        running.append(service)
        return service

    yield start
    for service in reversed(running):
        await service.stop()


@pytest.fixture
async def producer(kafka_bootstrap: str, topics: Topics) -> AsyncIterator[AIOKafkaProducer]:
    await ensure_topics(kafka_bootstrap, topics.all(), 3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()
