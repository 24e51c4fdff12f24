"""``baton-ingest``: run the ingest API with uvicorn."""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp

from baton_ingest.api import create_app
from baton_ingest.config import IngestSettings
from baton_shared.access_log import AccessLog
from baton_shared.gc_tuning import tune_for_throughput
from baton_shared.logs import configure_logging


def build_app() -> ASGIApp:
    """The app factory each server process calls (settings read in that process)."""
    settings = IngestSettings()
    configure_logging(settings.log_level, settings.log_format, settings.log_hash_key)
    app = create_app(settings)
    # Request handling allocates many short-lived objects; with the default thresholds
    # the collector's full passes show up as tail latency.
    tune_for_throughput()
    # uvicorn's own access log would carry client addresses.
    return AccessLog(app) if settings.access_log else app


def main() -> None:
    settings = IngestSettings()
    configure_logging(settings.log_level, settings.log_format, settings.log_hash_key)
    uvicorn.run(
        "baton_ingest.main:build_app",
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
