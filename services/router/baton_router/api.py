"""The router's HTTP API: admin-authenticated rep management and rep activity.

Routes: ``POST/GET /v1/reps`` (admin bearer token) and
``POST /v1/leads/{lead_id}/activity`` (publishes to ``leads.activity`` and
answers 202 once Kafka acknowledged). Plus ``/healthz`` and ``/metrics``.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, EmailStr, Field

from baton_router.service import RouterService
from baton_router.signing import new_secret
from baton_shared.clock import utcnow
from baton_shared.ids import stable_id
from baton_shared.schemas import Activity, ActivityKind

bearer = HTTPBearer(auto_error=False)


class RepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    webhook_url: AnyHttpUrl


class RepOut(BaseModel):
    id: uuid.UUID
    name: str
    email: str
    webhook_url: str
    status: str
    created_at: datetime


class RepCreated(RepOut):
    webhook_secret: str = Field(description="Standard Webhooks signing secret (whsec_...)")


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ActivityKind
    rep_id: uuid.UUID | None = Field(default=None, description="Defaults to the assigned rep")
    reason: str | None = Field(default=None, max_length=1000)
    occurred_at: AwareDatetime | None = None
    activity_id: str | None = Field(
        default=None, max_length=128, description="Idempotency key; repeats are dropped downstream"
    )


class ActivityAccepted(BaseModel):
    activity_id: str
    lead_id: str
    kind: ActivityKind


def api_routes(service: RouterService, admin_token: str) -> APIRouter:
    def require_admin(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if creds is None or not hmac.compare_digest(creds.credentials, admin_token):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "send the admin token as 'Authorization: Bearer <BATON_ADMIN_TOKEN>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    router = APIRouter(prefix="/v1", dependencies=[Depends(require_admin)])

    @router.post("/reps", status_code=201, response_model=RepCreated)
    async def create_rep(body: RepIn) -> RepCreated:
        rep = await service.create_rep(body.name, body.email, str(body.webhook_url), new_secret())
        return RepCreated(
            id=rep.id,
            name=rep.name,
            email=rep.email,
            webhook_url=rep.webhook_url,
            status=rep.status,
            created_at=rep.created_at or utcnow(),
            webhook_secret=rep.webhook_secret,
        )

    @router.get("/reps", response_model=list[RepOut])
    async def list_reps() -> list[RepOut]:
        return [
            RepOut(
                id=r.id,
                name=r.name,
                email=r.email,
                webhook_url=r.webhook_url,
                status=r.status,
                created_at=r.created_at,
            )
            for r in await service.store.list_reps()
        ]

    @router.post(
        "/leads/{lead_id}/activity",
        status_code=202,
        response_model=ActivityAccepted,
        responses={503: {"description": "Kafka unavailable; retry"}},
    )
    async def record_activity(lead_id: str, body: ActivityIn) -> ActivityAccepted:
        rep_id = body.rep_id or await service.store.current_rep_for(lead_id)
        occurred_at = body.occurred_at or utcnow()
        activity = Activity(
            activity_id=body.activity_id
            or stable_id(lead_id, body.kind.value, occurred_at.isoformat()),
            lead_id=lead_id,
            rep_id=str(rep_id) if rep_id else None,
            kind=body.kind,
            reason=body.reason,
            occurred_at=occurred_at,
        )
        await service.publish_activity(activity)
        return ActivityAccepted(activity_id=activity.activity_id, lead_id=lead_id, kind=body.kind)

    return router
