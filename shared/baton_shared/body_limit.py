"""Request bodies bounded before they are read: a pure ASGI middleware.

A declared ``Content-Length`` over the limit is answered at once, before the app (and
so before authentication) runs. A body without one (chunked) is counted as the app
reads it: the ``http.request`` message that passes the limit is never handed on; the
refusal is sent instead and the app is stopped. Nothing is buffered here, so a client
streaming gigabytes costs one message of memory. Each service gives its own refusal
(its error format); the status is 413.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Refusal = Callable[[int], Response]


class BodyTooLarge(Exception):
    """The body passed the limit while the app was reading it; the refusal is sent."""


class BodyLimit:
    """Refuses a request whose body passes ``max_bytes`` with ``refuse(max_bytes)``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, refuse: Refusal) -> None:
        self.app, self.max_bytes, self.refuse = app, max_bytes, refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self.refuse(self.max_bytes)(scope, receive, send)
            return
        received = 0
        started = refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not started:
                        refused = True
                        await self.refuse(self.max_bytes)(scope, receive, send)
                    raise BodyTooLarge(f"body passed {self.max_bytes} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the refusal is the answer; the app's own is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            # The app may wrap BodyTooLarge in its own error; once refused, any is ours.
            if not refused:
                raise


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
