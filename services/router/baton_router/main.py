"""``baton-router``: the router API and its consumer and dispatcher, in one process;
``baton-router migrate`` only upgrades its PostgreSQL schema (a deployment's release
step) and exits."""

from __future__ import annotations

import asyncio
import sys

import uvicorn

from baton_router.app import create_app
from baton_router.config import RouterSettings
from baton_router.service import MIGRATIONS, VERSION_TABLE
from baton_shared.access_log import AccessLog
from baton_shared.database import make_engine, migrate
from baton_shared.gc_tuning import tune_for_throughput
from baton_shared.logs import configure_logging


async def migrate_only(settings: RouterSettings) -> None:
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        await migrate(engine, MIGRATIONS, VERSION_TABLE, secret_box=settings.secret_box)
    finally:
        await engine.dispose()


def main() -> None:
    settings = RouterSettings()
    configure_logging(settings.log_level, settings.log_format, settings.log_hash_key)
    if sys.argv[1:] == ["migrate"]:
        asyncio.run(migrate_only(settings))
        return
    if sys.argv[1:]:
        raise SystemExit("usage: baton-router [migrate]")
    app = create_app(settings)
    # Routing allocates many short-lived objects per batch; with the default thresholds
    # the collector's older-generation passes show up as tail latency.
    tune_for_throughput()
    uvicorn.run(
        AccessLog(app),  # uvicorn's own would log paths with lead ids
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
