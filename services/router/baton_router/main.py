"""``baton-router``: the router API and its consumer and dispatcher, in one process."""

from __future__ import annotations

import uvicorn

from baton_router.app import create_app
from baton_router.config import RouterSettings
from baton_shared.access_log import AccessLog
from baton_shared.gc_tuning import tune_for_throughput
from baton_shared.logs import configure_logging


def main() -> None:
    settings = RouterSettings()
    configure_logging(settings.log_level, settings.log_format, settings.log_hash_key)
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
