"""``baton-router``: the router API and its consumer and dispatcher, in one process."""

from __future__ import annotations

import gc

import uvicorn

from baton_router.app import create_app
from baton_router.config import RouterSettings
from baton_shared.logs import configure_logging


def main() -> None:
    settings = RouterSettings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    # Routing allocates many short-lived objects per batch; with the default thresholds
    # the cyclic collector runs every few hundred allocations and its older-generation
    # passes show up as tail latency. Start-up objects are frozen out of every later
    # collection (as in the ingest service).
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
