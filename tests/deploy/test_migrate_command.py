"""``baton-router migrate`` and ``baton-sla-monitor migrate``: the release step the Helm
chart's hook Job runs. Each brings an empty database to its schema head and exits,
without Kafka; run again, it has nothing to do."""

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


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("baton-router", {"alembic_version_router", "reps", "assignments"}),
        ("baton-sla-monitor", {"alembic_version_sla", "alembic_version_sla_reporting"}),
    ],
)
def test_migrate_creates_the_schema_and_exits(
    pg_cluster, unique_name: str, command: str, expected: set[str]
) -> None:
    url = pg_cluster.create_database(unique_name)
    assert not expected & asyncio.run(tables(url))
    migrate(command, url)
    assert expected <= asyncio.run(tables(url))
    migrate(command, url)  # at head: nothing to do, still exit 0
