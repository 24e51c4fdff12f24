"""The HTTP services' access log, without personal data: one line per request.

It replaces uvicorn's access log, which writes the client's address and the path as
sent (``GET /v1/leads/ada@example.com``). This one names the route's template
instead (``/v1/leads/{lead_id}``, path parameters never filled in; ``-`` for a path
no route matched), never the query string or the address:
``http_request method=GET route=/v1/leads/{lead_id} status=200 duration_ms=1.9``.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baton_shared.logs import get_logger

log = get_logger("baton.access")


class AccessLog:
    """Wraps an ASGI app; logs each HTTP request after its response started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app fails before responding

        async def noting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "-"
            log.info(
                "http_request",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
