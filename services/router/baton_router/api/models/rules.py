"""Routing rule bodies: conditions on the lead that name the pool to route to."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from baton_router.api.models.common import Strict, omittable
from baton_router.routing import OPERATORS, InvalidCondition, check_condition

Scalar = str | int | float | bool


class ConditionIn(Strict):
    """``field op value``. Which values fit depends on the operator and the field (the
    server refuses the rest with a 422 naming the condition): ``eq``, ``ne``, ``gt``,
    ``gte``, ``lt``, ``lte``, ``contains``, ``ends_with``: one value (numbers for the
    comparisons); ``in``, ``not_in``: a non-empty list; ``between``: ``[min, max]``;
    ``exists``: true, false or no value."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"field": "country", "op": "in", "value": ["de", "at"]}]}
    )

    field: str = Field(
        min_length=1,
        max_length=80,
        description="What to compare: score, fit, engagement, express, stage, trigger_event, "
        "domain (company), email_domain, country (ISO code or name), region (na, latam, emea, "
        "apac, or the lead's own), segment (smb, mid_market, enterprise, or the lead's own), "
        "company_size / employees, industry, language (ISO 639-1), title, company; or "
        "traits.<name> for any raw trait",
        examples=["country"],
    )
    op: Literal[OPERATORS] = "eq"  # type: ignore[valid-type]
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> ConditionIn:
        try:
            check_condition(self.field, self.op, self.value)
        except InvalidCondition as exc:
            raise ValueError(str(exc)) from None
        return self


class RuleIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    position: StrictInt = Field(default=100, ge=0, le=1_000_000, description="Lower is tried first")
    conditions: list[ConditionIn] = Field(min_length=1, max_length=50)
    pool_id: uuid.UUID
    enabled: StrictBool = True


class RulePatch(Strict):
    """Only the fields sent change; none may be null."""

    name: str = omittable(min_length=1, max_length=200)
    position: StrictInt = omittable(ge=0, le=1_000_000)
    conditions: list[ConditionIn] = omittable(min_length=1, max_length=50)
    pool_id: uuid.UUID = omittable()
    enabled: StrictBool = omittable()


class RuleOut(BaseModel):
    id: uuid.UUID
    name: str
    position: int
    conditions: list[dict[str, Any]]
    pool_id: uuid.UUID
    enabled: bool
