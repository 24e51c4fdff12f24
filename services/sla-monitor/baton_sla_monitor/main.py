"""``baton-sla-monitor``: the SLA monitor API, consumer and breach sweep in one process."""

from __future__ import annotations

import uvicorn

from baton_shared.access_log import AccessLog
from baton_shared.logs import configure_logging
from baton_sla_monitor.app import create_app
from baton_sla_monitor.config import SlaSettings


def main() -> None:
    settings = SlaSettings()
    configure_logging(settings.log_level, settings.log_format, settings.log_hash_key)
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
