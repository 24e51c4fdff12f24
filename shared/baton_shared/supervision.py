"""A service's background loops, kept running: one that ends or raises is restarted.

Each loop is a coroutine function (a consumer pipeline's ``run``, the dispatcher, a
sweep). :class:`Supervisor` runs it as a named task; when the task ends for any reason
but shutdown, the failure is logged and counted, and the loop is started again after a
backoff (``RESTART_FIRST_S`` doubling up to ``RESTART_MAX_S``, back to the first once a
run lasted ``STABLE_S``). Meanwhile :meth:`Supervisor.down` names it, so readiness
(``/healthz``, ``/readyz``) reports the service unavailable until it runs again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from prometheus_client import Counter

from baton_shared.logs import get_logger
from baton_shared.tasks import cancel_and_wait

log = get_logger(__name__)

RESTART_FIRST_S = 0.5
RESTART_MAX_S = 30.0
STABLE_S = 60.0

RESTARTS = Counter(
    "baton_task_restarts_total",
    "Background loops (consumers, dispatcher, sweeps) restarted after they failed",
    ["task"],
)

Loop = Callable[[], Awaitable[None]]


class Supervisor:
    """Named background loops, each restarted with backoff when it ends (module doc)."""

    def __init__(
        self, first_s: float = RESTART_FIRST_S, max_s: float = RESTART_MAX_S
    ) -> None:
        self._first_s, self._max_s = first_s, max_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running: set[str] = set()

    def start(self, name: str, loop: Loop) -> None:
        """Run ``loop`` as the task ``name`` until :meth:`stop`."""
        self._running.add(name)  # up from now: the task starts on the next loop turn
        self._tasks[name] = asyncio.create_task(self._keep(name, loop), name=name)

    def down(self) -> list[str]:
        """The loops not running now (failed, waiting out their backoff)."""
        return sorted(name for name in self._tasks if name not in self._running)

    async def stop(self, timeout: float) -> list[str]:
        """Cancel every loop; the names of those that did not end within ``timeout``."""
        return await cancel_and_wait(self._tasks.values(), timeout)

    async def _keep(self, name: str, loop: Loop) -> None:
        delay = self._first_s
        while True:
            started = time.monotonic()
            self._running.add(name)
            try:
                await loop()
                error = "returned"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: restart, never die silently
                error = f"{type(exc).__name__}: {exc}"
            finally:
                self._running.discard(name)
            if time.monotonic() - started >= STABLE_S:
                delay = self._first_s
            RESTARTS.labels(name).inc()
            log.error("task_failed", task=name, error=error, restart_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_s)
