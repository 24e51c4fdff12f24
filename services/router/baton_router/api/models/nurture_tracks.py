"""Nurture track bodies: where MQLs are enrolled, and the SDR pool that works them."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import AnyHttpUrl, BaseModel, Field, StrictInt

from baton_router.api.models.common import Strict
from baton_router.api.models.rules import ConditionIn


class TrackIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    position: StrictInt = Field(default=100, ge=0, le=1_000_000)
    conditions: list[ConditionIn] = Field(default_factory=list, max_length=50)
    webhook_url: AnyHttpUrl
    sdr_pool_id: uuid.UUID | None = Field(
        default=None,
        description="Also give each MQL enrolled here to an SDR of this pool (a signed "
        "lead.sdr_task webhook, an assignment with stage 'mql'); absent: no SDR task",
    )


class TrackOut(BaseModel):
    id: uuid.UUID
    name: str
    position: int
    conditions: list[dict[str, Any]]
    webhook_url: str
    sdr_pool_id: uuid.UUID | None = None


class TrackCreated(TrackOut):
    webhook_secret: str
