"""The PostgreSQL launcher and the pg_cluster fixture."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from baton_devstack.postgres import LocalPostgres

pytestmark = pytest.mark.integration


async def _select_one(url: str) -> int:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        return await connection.fetchval("SELECT 1")
    finally:
        await connection.close()


async def test_database_url_connects(database_url: str) -> None:
    assert await _select_one(database_url) == 1


async def test_create_database_gives_a_connectable_url(pg_cluster, unique_name: str) -> None:
    url = pg_cluster.create_database(unique_name)
    assert url.endswith(f"/{unique_name}")
    assert pg_cluster.create_database(unique_name) == url  # idempotent
    assert await _select_one(url) == 1


def test_create_database_rejects_unsafe_names(pg_cluster) -> None:
    with pytest.raises(ValueError):
        pg_cluster.create_database('x"; DROP DATABASE baton; --')


async def test_restart_keeps_data(tmp_path: Path) -> None:
    postgres = LocalPostgres(tmp_path / "pg")
    try:
        postgres.start()
        connection = await asyncpg.connect(postgres.url)
        await connection.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('yes')")
        await connection.close()
        postgres.stop()
        assert not postgres.is_running
        postgres.start()
        connection = await asyncpg.connect(postgres.url)
        assert await connection.fetchval("SELECT v FROM kept") == "yes"
        await connection.close()
    finally:
        postgres.remove()
