"""``baton-sla-monitor``: the SLA monitor API, consumer and breach sweep in one process;
``baton-sla-monitor rebuild-reports`` rebuilds the reporting store from the topics;
``baton-sla-monitor migrate`` only upgrades its PostgreSQL schemas and exits."""

from __future__ import annotations

import asyncio
import sys

import uvicorn

from baton_shared.access_log import AccessLog
from baton_shared.database import make_engine, migrate
from baton_shared.logs import configure_logging
from baton_sla_monitor.app import create_app
from baton_sla_monitor.config import SlaSettings
from baton_sla_monitor.reporting import migrate_reporting, rebuild
from baton_sla_monitor.service import MIGRATIONS, VERSION_TABLE


async def migrate_only(settings: SlaSettings) -> None:
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        await migrate(engine, MIGRATIONS, VERSION_TABLE)
        await migrate_reporting(engine)
    finally:
        await engine.dispose()


def main() -> None:
    settings = SlaSettings()
    configure_logging(settings.log_level, settings.log_format, settings.log_hash_key)
    if sys.argv[1:] == ["rebuild-reports"]:
        raise SystemExit(rebuild.main(settings))
    if sys.argv[1:] == ["migrate"]:
        asyncio.run(migrate_only(settings))
        return
    if sys.argv[1:]:
        raise SystemExit("usage: baton-sla-monitor [rebuild-reports | migrate]")
    uvicorn.run(
        AccessLog(create_app(settings)),  # uvicorn's own would log paths with lead ids
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
