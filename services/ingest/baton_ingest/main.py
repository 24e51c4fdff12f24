"""``baton-ingest``: run the ingest API with uvicorn. With several workers, their
metrics go through prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``,
a fresh temporary directory unless set), so every worker's ``/metrics`` counts all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from baton_ingest.api import create_app
from baton_ingest.config import IngestSettings
from baton_shared.access_log import AccessLog
from baton_shared.gc_tuning import tune_for_throughput
from baton_shared.logs import configure_logging
from baton_shared.metrics import MULTIPROC_DIR


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


def share_metrics_between_workers() -> None:
    """Point the workers (spawned after this, they inherit the environment) at one
    directory for their metric files, emptied of a previous run's."""
    directory = os.environ.get(MULTIPROC_DIR) or tempfile.mkdtemp(prefix="baton-ingest-")
    for stale in Path(directory).glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_DIR] = directory


def main() -> None:
    settings = IngestSettings()
    configure_logging(settings.log_level, settings.log_format, settings.log_hash_key)
    if settings.workers > 1:
        share_metrics_between_workers()
    uvicorn.run(
        "baton_ingest.main:build_app",
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        # A worker must answer the supervisor's ping within this; a new one first boots an
        # interpreter and imports the app, which on a busy or CPU-throttled host takes
        # longer than uvicorn's 5 s (it would be killed and restarted over and over).
        timeout_worker_healthcheck=60,
    )


if __name__ == "__main__":
    main()
