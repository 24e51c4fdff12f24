"""Fixtures shared by the router's integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from baton_router.service import MIGRATIONS, VERSION_TABLE
from baton_shared.database import make_engine, migrate


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    """A producer for feeding transitions and SLA events to the router under test."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@pytest.fixture
async def db_url(pg_cluster, unique_name: str) -> AsyncIterator[str]:
    url = pg_cluster.create_database(unique_name)
    engine = make_engine(url, pool_size=2)
    try:
        await migrate(engine, MIGRATIONS, VERSION_TABLE)
    finally:
        await engine.dispose()
    yield url


@pytest.fixture
def router_env(kafka_bootstrap: str, db_url: str, unique_name: str) -> dict[str, str]:
    """The environment of a router process on this test's topics and database."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": db_url,
        "BATON_TOPIC_PREFIX": f"{unique_name}.",
        "BATON_ENV": "test",
    }


@pytest.fixture
async def engines(db_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two independent engines (pools) on one database: two routers."""
    first, second = make_engine(db_url, pool_size=5), make_engine(db_url, pool_size=5)
    try:
        yield first, second
    finally:
        await first.dispose()
        await second.dispose()
