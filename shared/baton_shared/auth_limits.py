"""Failed authentications rate limited per client address.

:class:`FailedAuths` is the pure core: each address's failures in its current window,
for at most ``max_clients`` addresses (the least recently failing is forgotten), so
its memory is bounded whatever the number of callers. An address with
``max_failures`` failures in its window is refused until the window ends.

:class:`FailedAuthLimit` is the ASGI shell for the HTTP services: a request from a
refused address is answered by the service's own refusal (``429`` with
``Retry-After``) before the app runs; any ``401`` the app answers counts as a failure.
A request that authenticates is never counted, so callers with a valid credential
are unaffected. The address is the peer uvicorn reports (behind a proxy: the one
``FORWARDED_ALLOW_IPS`` lets it take from ``X-Forwarded-For``).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baton_shared.problems import problem
from baton_shared.settings import ServiceSettings

Refusal = Callable[[int], Response]


@dataclass
class _Window:
    started_at: float
    failures: int


class FailedAuths:
    """Failures per address, bounded in the addresses it remembers."""

    def __init__(self, max_failures: int, window_seconds: float, max_clients: int) -> None:
        self.max_failures, self.window_seconds = max_failures, window_seconds
        self.max_clients = max_clients
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def retry_after(self, address: str, now: float) -> int | None:
        """Seconds until ``address`` may try again; None when it may now."""
        window = self._windows.get(address)
        if self.max_failures == 0 or window is None or window.failures < self.max_failures:
            return None
        left = window.started_at + self.window_seconds - now
        return max(1, math.ceil(left)) if left > 0 else None

    def failed(self, address: str, now: float) -> None:
        """Count one failed authentication from ``address``."""
        if self.max_failures == 0:
            return
        window = self._windows.pop(address, None)
        if window is None or now - window.started_at >= self.window_seconds:
            window = _Window(now, 0)
        window.failures += 1
        self._windows[address] = window
        while len(self._windows) > self.max_clients:
            self._windows.popitem(last=False)


def failed_auths(settings: ServiceSettings) -> FailedAuths:
    """The limiter ``BATON_AUTH_*`` configure."""
    return FailedAuths(
        settings.auth_max_failures,
        settings.auth_failure_window_seconds,
        settings.auth_limit_clients,
    )


def too_many_failures(retry_after: int) -> Response:
    """The refusal as problem details (the router's, the SLA monitor's)."""
    return problem(
        429,
        f"too many failed authentications from this address; retry in {retry_after} s",
        kind="too-many-failed-authentications",
        headers={"Retry-After": str(retry_after)},
    )


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class FailedAuthLimit:
    """Refuses a client address after too many ``401`` answers (``failures``)."""

    def __init__(
        self, app: ASGIApp, *, failures: FailedAuths, refuse: Refusal = too_many_failures
    ) -> None:
        self.app, self.failures, self.refuse = app, failures, refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.failures.max_failures == 0:
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        retry_after = self.failures.retry_after(address, time.monotonic())
        if retry_after is not None:
            await self.refuse(retry_after)(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.failures.failed(address, time.monotonic())
            await send(message)

        await self.app(scope, receive, counting_send)
