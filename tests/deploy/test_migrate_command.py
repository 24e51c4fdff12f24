"""``baton-router migrate``: the release step the Helm chart's hook Job runs. It brings
an empty database to the schema head and exits, without Kafka, and again is a no-op."""

from __future__ import annotations

import asyncio
import os
import subprocess

import asyncpg
import pytest

pytestmark = pytest.mark.integration


def migrate(command: str, database_url: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BATON_ENV": "test",
        # Unreachable: migrating needs PostgreSQL only.
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    }
    result = subprocess.run(
        [command, "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


async def tables(database_url: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT table_name FROM information_schema.tables")
    finally:
        await conn.close()
    return {row["table_name"] for row in rows}


def test_router_migrate_creates_the_schema_and_exits(pg_cluster, unique_name: str) -> None:
    url = pg_cluster.create_database(unique_name)
    assert "alembic_version_router" not in asyncio.run(tables(url))
    migrate("baton-router", url)
    created = asyncio.run(tables(url))
    assert {"alembic_version_router", "reps", "assignments"} <= created
    migrate("baton-router", url)  # at head: nothing to do, still exit 0
