"""``baton-sla-monitor``: the SLA monitor API, consumer and breach sweep in one process;
``baton-sla-monitor rebuild-reports`` rebuilds the reporting store from the topics."""

from __future__ import annotations

import sys

import uvicorn

from baton_shared.access_log import AccessLog
from baton_shared.logs import configure_logging
from baton_sla_monitor.app import create_app
from baton_sla_monitor.config import SlaSettings
from baton_sla_monitor.reporting import rebuild


def main() -> None:
    settings = SlaSettings()
    configure_logging(settings.log_level, settings.log_format, settings.log_hash_key)
    if sys.argv[1:] == ["rebuild-reports"]:
        raise SystemExit(rebuild.main(settings))
    if sys.argv[1:]:
        raise SystemExit("usage: baton-sla-monitor [rebuild-reports]")
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
