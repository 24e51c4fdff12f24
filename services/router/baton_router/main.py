"""``baton-router``: the router API and its consumer and dispatcher, in one process."""

from __future__ import annotations

import uvicorn

from baton_router.app import create_app
from baton_router.config import RouterSettings
from baton_shared.logs import configure_logging


def main() -> None:
    settings = RouterSettings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
