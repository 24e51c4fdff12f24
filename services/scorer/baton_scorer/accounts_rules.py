"""The ``accounts:`` section of the rules file: account thresholds and account fit. Pure.

An account's score is its fit (points for the company, from the traits its leads carry
about it: :func:`baton_shared.accounts.company_traits`) plus the sum of its leads'
decayed engagement. Crossing ``thresholds.engaged`` or ``thresholds.sales_ready`` moves
the account (:mod:`baton_scorer.accounts`). Without the section, leads are not rolled up.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AccountThresholds(_Frozen):
    engaged: float = Field(default=80, gt=0, description="An account becomes engaged here")
    sales_ready: float = Field(default=200, gt=0, description="... and sales-ready here")

    @model_validator(mode="after")
    def _ordered(self) -> AccountThresholds:
        if self.sales_ready <= self.engaged:
            raise ValueError(
                f"accounts.thresholds.sales_ready ({self.sales_ready}) must be above "
                f"accounts.thresholds.engaged ({self.engaged})"
            )
        return self


class EmployeeRange(_Frozen):
    """Points for a company of ``min`` to ``max`` employees (either bound may be open)."""

    min: float | None = None
    max: float | None = None
    points: float


class AccountFit(_Frozen):
    """Points for the company; each attribute counts once (the first match)."""

    industry: dict[str, float] = Field(default_factory=dict, description="industry -> points")
    employees: list[EmployeeRange] = Field(default_factory=list)

    def points(self, company: dict[str, Any]) -> float:
        """The fit of a company whose traits are ``company``."""
        total = 0.0
        industry = company.get("industry")
        if isinstance(industry, str):
            wanted = industry.strip().lower()
            total += next((p for k, p in self.industry.items() if k.lower() == wanted), 0.0)
        size = employees_of(company)
        if size is not None:
            for r in self.employees:
                if (r.min is None or size >= r.min) and (r.max is None or size <= r.max):
                    total += r.points
                    break
        return total


class AccountRules(_Frozen):
    thresholds: AccountThresholds = AccountThresholds()
    fit: AccountFit = AccountFit()


def employees_of(company: dict[str, Any]) -> float | None:
    """The company's head count: ``employees`` (Segment's group trait), ``employee_count``
    or ``company_size``; a number or a numeric string (``"1,200"``)."""
    for name in ("employees", "employee_count", "company_size"):
        raw = company.get(name)
        if isinstance(raw, bool):
            continue
        if isinstance(raw, str):
            try:
                raw = float(raw.replace(",", "").strip())
            except ValueError:
                continue
        if isinstance(raw, int | float) and math.isfinite(raw):
            return float(raw)
    return None
