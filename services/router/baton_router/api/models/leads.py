"""Lead bodies: a rep's activity on a lead and the lead's assignments.

A ``qualified`` activity carries the qualification fields the rep confirmed: ``fields``
of a ``framework`` (default ``bant``), or ``bant`` (BANT fields, the older form). A
built-in framework's fields are checked against it (:mod:`baton_shared.qualification`);
a custom framework lives in the scorer's rules, which the router does not read, so its
name and fields are checked as slugs only.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from baton_router.api.models.common import Strict
from baton_shared.instants import Instant
from baton_shared.qualification import (
    BANT,
    FRAMEWORKS,
    MAX_FIELDS,
    built_in_names,
    foreign_fields,
    is_slug,
)
from baton_shared.schemas import ActivityKind

BANT_FIELDS = FRAMEWORKS[BANT]


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
    framework: str | None = Field(
        default=None,
        max_length=64,
        description=f"On 'qualified': the framework 'fields' belong to: {built_in_names()} "
        "(checked), or a custom one of the scorer's rules (a slug); default bant",
        examples=["meddic"],
    )
    fields: list[str] = Field(
        default_factory=list,
        max_length=MAX_FIELDS,
        description="On 'qualified': the fields of 'framework' the rep confirmed",
        examples=[["metrics", "economic_buyer"]],
    )

    @field_validator("framework")
    @classmethod
    def _framework_is_a_slug(cls, value: str | None) -> str | None:
        if value is not None and not is_slug(value):
            raise ValueError(
                f"{value!r} is no framework: use {built_in_names()}, or a custom framework's "
                "name (lowercase letters, digits, '_', from a letter)"
            )
        return value

    @field_validator("bant")
    @classmethod
    def _bant_fields(cls, value: list[str]) -> list[str]:
        return _checked(BANT, value)

    @field_validator("fields")
    @classmethod
    def _fields_belong_to_framework(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if "framework" not in info.data:  # the framework itself is wrong: said there
            return value
        return _checked(info.data["framework"] or BANT, value)

    @model_validator(mode="after")
    def _fits_kind(self) -> ActivityIn:
        if self.kind == ActivityKind.REJECTED and not (self.reason or "").strip():
            raise ValueError("a rejection needs a 'reason'")
        self._qualification_fits_kind()
        return self

    def _qualification_fits_kind(self) -> None:
        if self.kind == ActivityKind.QUALIFIED and not (self.bant or self.fields):
            raise ValueError(
                "'qualified' needs 'bant' or 'fields': the fields the rep confirmed, at least "
                f"one of {', '.join(BANT_FIELDS)} or of the 'framework' named"
            )
        if self.kind != ActivityKind.QUALIFIED:
            for name in ("bant", "fields", "framework"):
                if getattr(self, name):
                    raise ValueError(f"'{name}' goes only with kind 'qualified'")
        if self.bant and (self.framework or BANT) != BANT:
            raise ValueError(
                f"'bant' holds BANT fields; with framework {self.framework!r} use 'fields'"
            )


def _checked(framework: str, fields: list[str]) -> list[str]:
    """``fields`` without repeats (the same field twice says nothing more), or the
    refusal naming the ones that are not ``framework``'s."""
    foreign = foreign_fields(framework, fields)
    if foreign:
        known = FRAMEWORKS.get(framework)
        use = f"{framework} has {', '.join(known)}" if known else "fields are slugs"
        raise ValueError(f"unknown field(s) {', '.join(map(repr, foreign))}; {use}")
    return list(dict.fromkeys(fields))


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
