"""Erasure bodies: who is to be erased (any id Baton knows them by), and what became of
an erasure."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from baton_router.api.models.common import Strict, omittable

NO_NUL = r"^[^\x00]*$"
Identity = Annotated[str, Field(min_length=1, max_length=320, pattern=NO_NUL)]
ANY_IDENTITY = [{"required": [name]} for name in ("user_id", "email", "anonymous_id", "lead_id")]


class ErasureIn(Strict):
    """At least one of the person's ids; each is erased with every lead linked to it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": ANY_IDENTITY})

    user_id: Identity = omittable(description="The userId a source sent")
    email: Identity = omittable(description="An email of the person")
    anonymous_id: Identity = omittable(description="An anonymousId")
    lead_id: Identity = omittable(
        description="A lead id as Baton shows it (a pseudonym in privacy mode)"
    )
    requested_by: str = Field(
        min_length=1,
        max_length=200,
        pattern=NO_NUL,
        description="Who asked, for the record: a ticket or an operator, not the person",
    )

    @model_validator(mode="after")
    def _some_identity(self) -> ErasureIn:
        if not self.identities():
            raise ValueError("give at least one of user_id, email, anonymous_id, lead_id")
        return self

    def identities(self) -> dict[str, str]:
        ids = {"user_id": self.user_id, "email": self.email}
        ids |= {"anonymous_id": self.anonymous_id, "lead_id": self.lead_id}
        return {name: value for name, value in ids.items() if value is not None}


class ErasureAccepted(BaseModel):
    erasure_id: uuid.UUID
    status_url: str = Field(description="Where the erasure's progress is shown")


class ErasureStatus(BaseModel):
    erasure_id: uuid.UUID
    requested_by: str
    requested_at: datetime
    subjects: list[str] = Field(description="The pseudonyms of the ids given")
    steps: dict[str, datetime | None] = Field(
        description="When each service (scorer, router, sla-monitor) finished its part"
    )
    completed_at: datetime | None = Field(description="When every step was done")
    status: Literal["in_progress", "completed"]
    topics: Literal["sealed", "not sealed"] = Field(
        description="sealed: topics hold pseudonyms and fields sealed with keys now "
        "destroyed (privacy mode); not sealed: records already on topics stay readable "
        "until their retention ends"
    )
