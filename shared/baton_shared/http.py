"""The operational endpoints every HTTP service exposes: readiness and metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from baton_shared.metrics import exposition

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


def ops_router(readiness: ReadinessCheck) -> APIRouter:
    """``GET /healthz`` (200 only when every dependency answers) and ``GET /metrics``."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Readiness: every dependency answers")
    async def healthz() -> JSONResponse:
        checks = await readiness()
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    return router
