"""``baton-ingest``: run the ingest API with uvicorn."""

from __future__ import annotations

import uvicorn

from baton_ingest.api import create_app
from baton_ingest.config import IngestSettings
from baton_shared.logs import configure_logging


def main() -> None:
    settings = IngestSettings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=settings.access_log,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
