"""The router's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from baton_router.api import api_routes
from baton_router.config import RouterSettings
from baton_router.service import KafkaUnavailable, RouterService
from baton_shared.http import ops_router


def create_app(settings: RouterSettings) -> FastAPI:
    service = RouterService(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app = FastAPI(title="Baton router", version="0.1.0", lifespan=lifespan)
    app.state.service = service
    app.include_router(ops_router(service.readiness))
    app.include_router(api_routes(service, settings.admin_token))

    @app.exception_handler(KafkaUnavailable)
    async def _kafka_down(_: Request, exc: KafkaUnavailable) -> JSONResponse:
        return JSONResponse(
            {"detail": "Kafka unavailable; the activity was not recorded"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    return app
