"""Lead bodies: a rep's activity on a lead (with BANT fields on 'qualified') and the
lead's assignments."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from baton_router.api.models.common import Strict
from baton_shared.instants import Instant
from baton_shared.schemas import ActivityKind

BANT_FIELDS = ("budget", "authority", "need", "timeline")


class ActivityIn(Strict):
    kind: ActivityKind
    rep_id: uuid.UUID | None = Field(default=None, description="Defaults to the assigned rep")
    reason: str | None = Field(default=None, max_length=1000)
    occurred_at: Instant | None = None
    activity_id: str | None = Field(
        default=None, max_length=128, description="Idempotency key; repeats are dropped downstream"
    )
    assignment_id: uuid.UUID | None = None
    bant: list[str] = Field(
        default_factory=list,
        max_length=4,
        description="On 'qualified': the BANT fields the rep confirmed, at least one of "
        f"{', '.join(BANT_FIELDS)}",
        examples=[["budget", "authority"]],
    )

    @model_validator(mode="after")
    def _fits_kind(self) -> ActivityIn:
        if self.kind == ActivityKind.REJECTED and not (self.reason or "").strip():
            raise ValueError("a rejection needs a 'reason'")
        unknown = [field for field in self.bant if field not in BANT_FIELDS]
        if unknown:
            raise ValueError(
                f"bant: unknown field(s) {', '.join(map(repr, unknown))}; "
                f"use {', '.join(BANT_FIELDS)}"
            )
        if self.kind == ActivityKind.QUALIFIED and not self.bant:
            raise ValueError(
                f"'qualified' needs 'bant': the fields the rep confirmed, at least one of "
                f"{', '.join(BANT_FIELDS)}"
            )
        if self.bant and self.kind != ActivityKind.QUALIFIED:
            raise ValueError("'bant' goes only with kind 'qualified'")
        # The same field twice says nothing more; keep the first of each.
        object.__setattr__(self, "bant", list(dict.fromkeys(self.bant)))
        return self


class ActivityAccepted(BaseModel):
    activity_id: str
    lead_id: str
    kind: ActivityKind


class AssignmentOut(BaseModel):
    assignment_id: uuid.UUID
    lead_id: str
    rep_id: uuid.UUID
    transition_id: str
    strategy: str
    express: bool
    status: str
    qualified_at: datetime
    assigned_at: datetime
    sla_due_at: datetime | None
    reassignments: int
    stage: str = Field(default="sql", description="sql, or mql for an SDR task")
