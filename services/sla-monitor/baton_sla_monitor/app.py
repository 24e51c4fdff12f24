"""The SLA monitor's FastAPI application: clocks by lead, readiness, metrics."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from baton_shared.http import ops_router
from baton_sla_monitor.config import SlaSettings
from baton_sla_monitor.service import SlaService

bearer = HTTPBearer(auto_error=False)


class ClockOut(BaseModel):
    id: str
    assignment_id: str
    lead_id: str
    rep_id: str
    express: bool
    started_at: datetime
    deadline_at: datetime
    status: str
    closed_at: datetime | None
    elapsed_seconds: float | None


def create_app(settings: SlaSettings) -> FastAPI:
    service = SlaService(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    def require_admin(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if creds is None or not hmac.compare_digest(creds.credentials, settings.admin_token):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "send 'Authorization: Bearer <BATON_ADMIN_TOKEN>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    api = APIRouter(prefix="/v1", dependencies=[Depends(require_admin)])

    @api.get("/leads/{lead_id}/clocks", response_model=list[ClockOut])
    async def lead_clocks(lead_id: str) -> list[ClockOut]:
        return [
            ClockOut.model_validate(c, from_attributes=True)
            for c in await service.clocks.clocks_for(lead_id)
        ]

    app = FastAPI(title="Baton SLA monitor", version="0.1.0", lifespan=lifespan)
    app.state.service = service
    app.include_router(ops_router(service.readiness))
    app.include_router(api)
    return app
