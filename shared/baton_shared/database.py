"""PostgreSQL for the services that keep state: an async engine and migrations on start.

Each service owns its tables and its Alembic history (its own version table),
so services can share one database without stepping on each other.
"""

from __future__ import annotations

import asyncio
import weakref
import zlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from baton_shared.settings import to_asyncpg_url


def make_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    """An engine whose errors never quote the statement's bound values (personal data
    in logs otherwise)."""
    return create_async_engine(
        to_asyncpg_url(database_url),
        pool_size=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(script_location: Path, version_table: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["version_table"] = version_table
    return cfg


async def migrate(
    engine: AsyncEngine, script_location: Path, version_table: str, **attributes: object
) -> None:
    """Upgrade to head. An advisory lock makes concurrent starts take turns. ``attributes``
    reach the migrations as ``op.get_context().config.attributes`` (e.g. a key one needs)."""
    cfg = alembic_config(script_location, version_table)
    cfg.attributes.update(attributes)
    lock_key = zlib.crc32(version_table.encode())

    def upgrade(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    # Alembic keeps the running migration in module globals (``op``, ``context``): two
    # chains migrating at once in one process (the SLA monitor's and its reporting
    # store's, or two services in one test) would clobber each other. They take turns.
    async with _in_process_lock():
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key})
            await conn.run_sync(upgrade)


_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _in_process_lock() -> asyncio.Lock:
    """One lock per event loop for every migration this process runs."""
    loop = asyncio.get_running_loop()
    lock = _LOCKS.get(loop)
    if lock is None:
        lock = _LOCKS[loop] = asyncio.Lock()
    return lock


async def database_answers(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
