"""Scoring rules: loaded from YAML, validated, and versioned by name plus content hash."""

from __future__ import annotations

import hashlib
import re
from functools import cached_property
from importlib.resources import files
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Thresholds(_Frozen):
    mql: float = 50
    sql: float = 100

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.sql <= self.mql:
            raise ValueError(
                f"thresholds.sql ({self.sql}) must be above thresholds.mql ({self.mql})"
            )
        return self


class EngagementRules(_Frozen):
    half_life_days: float = Field(default=14, gt=0)
    events: dict[str, float] = Field(default_factory=dict)
    pages: dict[str, float] = Field(default_factory=dict)


class EmailDomainRules(_Frozen):
    free_mail: list[str] = Field(default_factory=list)
    free_mail_points: float = 0


class FitRules(_Frozen):
    title: dict[str, float] = Field(default_factory=dict)
    email_domains: EmailDomainRules = EmailDomainRules()

    @model_validator(mode="after")
    def _patterns_compile(self) -> FitRules:
        for pattern in self.title:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"fit.title pattern {pattern!r}: {exc}") from exc
        return self


class Rules(_Frozen):
    name: str
    thresholds: Thresholds = Thresholds()
    engagement: EngagementRules = EngagementRules()
    express_lanes: list[str] = Field(default_factory=list)
    fit: FitRules = FitRules()
    content_hash: str = ""

    @property
    def version(self) -> str:
        """``name@hash``: every transition names the rules that produced it."""
        return f"{self.name}@{self.content_hash}"

    @property
    def half_life_seconds(self) -> float:
        return self.engagement.half_life_days * 86_400

    @cached_property
    def title_patterns(self) -> tuple[tuple[re.Pattern[str], float], ...]:
        return tuple((re.compile(p, re.IGNORECASE), pts) for p, pts in self.fit.title.items())


class RulesError(ValueError):
    """The rules file is invalid; the message names the file and the field."""


def parse_rules(text: str, origin: str = "<rules>") -> Rules:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RulesError(f"{origin}: must be a mapping with at least 'name'")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    try:
        return Rules.model_validate({**data, "content_hash": digest})
    except ValueError as exc:
        raise RulesError(f"{origin}: {exc}") from exc


def load_rules(path: Path | None = None) -> Rules:
    """The rules in ``path``, or the shipped defaults."""
    if path is None:
        text = files("baton_scorer").joinpath("default_rules.yaml").read_text()
        return parse_rules(text, "default_rules.yaml")
    return parse_rules(path.read_text(), str(path))
