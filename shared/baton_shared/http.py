"""The operational endpoints every HTTP service exposes: liveness, readiness, metrics.

``GET /livez`` answers 200 while the event loop runs (a restart would not help anything
else). ``GET /readyz`` and ``GET /healthz`` (the same check) answer 200 only when every
dependency answers and every background loop runs (:class:`~baton_shared.supervision.
Supervisor`); dependency checks are cached for ``ttl_s``, so probes cost nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from baton_shared.metrics import exposition
from baton_shared.supervision import Supervisor

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]
CHECK_TTL_S = 2.0


class CachedReadiness:
    """``check`` run at most once per ``ttl_s`` (concurrent probes share one run)."""

    def __init__(self, check: ReadinessCheck, ttl_s: float = CHECK_TTL_S) -> None:
        self._check, self._ttl_s = check, ttl_s
        self._at = float("-inf")
        self._answer: dict[str, bool] = {}
        self._lock = asyncio.Lock()

    async def __call__(self) -> dict[str, bool]:
        async with self._lock:
            if time.monotonic() - self._at >= self._ttl_s:
                self._answer = await self._check()
                self._at = time.monotonic()
            return dict(self._answer)


def ops_router(readiness: ReadinessCheck, supervisor: Supervisor | None = None) -> APIRouter:
    """``/livez``, ``/readyz`` = ``/healthz`` (module doc) and ``/metrics``."""
    router = APIRouter(tags=["operations"])
    cached = CachedReadiness(readiness)

    async def ready() -> JSONResponse:
        checks = await cached()
        down = supervisor.down() if supervisor is not None else []
        if supervisor is not None:
            checks["tasks"] = not down
        ok = all(checks.values())
        body: dict[str, object] = {"status": "ready" if ok else "unavailable", "checks": checks}
        if down:
            body["tasks_down"] = down
        return JSONResponse(body, status_code=200 if ok else 503)

    router.add_api_route("/healthz", ready, methods=["GET"], summary="Readiness (as /readyz)")
    router.add_api_route(
        "/readyz", ready, methods=["GET"], summary="Readiness: dependencies and loops run"
    )

    @router.get("/livez", summary="Liveness: the process answers")
    async def livez() -> JSONResponse:
        return JSONResponse({"status": "alive"})

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    return router
