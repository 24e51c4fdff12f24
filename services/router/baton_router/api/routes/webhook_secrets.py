"""Rotating a webhook signing secret: ``POST /v1/reps/{rep_id}/webhook-secret`` and
``POST /v1/nurture-tracks/{track_id}/webhook-secret``. Admin only.

The answer holds the new secret (shown once). Until ``previous_valid_until`` every
webhook carries two signatures, the new secret's and the old one's, so the receiver can
switch to the new secret at any time in that window; after it, only the new one signs.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from fastapi import APIRouter
from pydantic import BaseModel, Field

from baton_router.api.deps import ERRORS, AdminDep, RepIdPath, ServiceDep
from baton_router.api.models.common import Strict
from baton_router.signing import new_secret
from baton_shared.clock import utcnow
from baton_shared.problems import problem_responses

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["webhooks"])
MAX_GRACE_SECONDS = 30 * 86_400


class SecretRotation(Strict):
    grace_seconds: float | None = Field(
        default=None,
        ge=0,
        le=MAX_GRACE_SECONDS,
        strict=True,
        description="How long the old secret still signs (default "
        "BATON_ROUTER_SECRET_GRACE_SECONDS; 0: stop at once)",
    )


class SecretRotated(BaseModel):
    webhook_secret: str = Field(description="The new signing secret (whsec_...); shown once")
    previous_valid_until: datetime | None = Field(
        description="Until when the old secret also signs (null: it no longer does)"
    )


async def _rotate(
    service: ServiceDep, owner: str, owner_id: uuid.UUID, body: SecretRotation | None
) -> SecretRotated:
    grace = body.grace_seconds if body and body.grace_seconds is not None else None
    seconds = service.settings.secret_grace_seconds if grace is None else grace
    secret = new_secret()
    rotated = await service.stores.webhook_secrets.rotate(
        owner, owner_id, secret, utcnow(), timedelta(seconds=seconds)
    )
    return SecretRotated(webhook_secret=secret, previous_valid_until=rotated.previous_until)


@router.post(
    "/reps/{rep_id}/webhook-secret",
    response_model=SecretRotated,
    responses=problem_responses(404),
)
async def rotate_rep_secret(
    rep_id: RepIdPath, _: AdminDep, service: ServiceDep, body: SecretRotation | None = None
) -> SecretRotated:
    """A new signing secret for the rep's webhooks; the old one also signs for the grace
    period."""
    return await _rotate(service, "rep", rep_id, body)


@router.post(
    "/nurture-tracks/{track_id}/webhook-secret",
    response_model=SecretRotated,
    responses=problem_responses(404),
)
async def rotate_track_secret(
    track_id: uuid.UUID, _: AdminDep, service: ServiceDep, body: SecretRotation | None = None
) -> SecretRotated:
    """A new signing secret for the track's webhooks; the old one also signs for the
    grace period."""
    return await _rotate(service, "nurture track", track_id, body)
