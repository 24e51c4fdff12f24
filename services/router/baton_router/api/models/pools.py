"""Pool bodies: a team, the strategy that picks among its members, and its escalation
policy."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, model_validator

from baton_router.api.models.common import Strict, omittable
from baton_router.api.models.reps import SlackWebhookUrl
from baton_router.strategies import Strategy


class PoolIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    strategy: Strategy = Strategy.ROUND_ROBIN
    express: StrictBool = Field(
        default=False, description="The closers: express SQLs go here first"
    )
    members: list[uuid.UUID] = Field(default_factory=list)
    escalation: Literal["next_rep", "manager"] = "next_rep"
    manager_rep_id: uuid.UUID | None = None
    max_reassignments: StrictInt = Field(default=2, ge=0, le=20)
    slack_webhook_url: SlackWebhookUrl | None = Field(
        default=None,
        description="A Slack incoming webhook for the team: receives the assignments of "
        "members without their own",
    )

    @model_validator(mode="after")
    def _manager_needed(self) -> PoolIn:
        if self.escalation == "manager" and self.manager_rep_id is None:
            raise ValueError("escalation 'manager' needs manager_rep_id")
        return self


class PoolPatch(Strict):
    """Only the fields sent change; ``manager_rep_id`` may be null (no manager)."""

    name: str = omittable(min_length=1, max_length=100)
    strategy: Strategy = omittable()
    express: StrictBool = omittable()
    members: list[uuid.UUID] = omittable()
    escalation: Literal["next_rep", "manager"] = omittable()
    manager_rep_id: uuid.UUID | None = None
    max_reassignments: StrictInt = omittable(ge=0, le=20)
    slack_webhook_url: SlackWebhookUrl | None = None


class PoolOut(BaseModel):
    id: uuid.UUID
    name: str
    strategy: Strategy
    express: bool
    members: list[uuid.UUID]
    escalation: str
    manager_rep_id: uuid.UUID | None
    max_reassignments: int
    slack_webhook_url: str | None = None
