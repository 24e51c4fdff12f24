"""SLA policy: how long the pipeline may take to assign a lead and a rep to touch it.

Configuration, never code: a YAML file (the shipped ``default_sla_policy.yaml``, or
``BATON_SLA_POLICY_FILE``) validated into a frozen :class:`SlaPolicy` and versioned
as ``name@content-hash``. Windows are set per priority (``express_sql``, ``sql``,
``mql``), with per-team overrides and optional business-hours calendars; warnings
fire at fractions of the window. A stage may also ask for a minimum number of contact
attempts within a number of business days (``attempts``). Everything here is pure:
callers pass ``now``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from baton_shared.business_hours import BusinessCalendar, wall_clock_add
from baton_shared.settings import ServiceSettings

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class Priority(StrEnum):
    """Which window applies: express SQLs are the most urgent."""

    EXPRESS_SQL = "express_sql"
    SQL = "sql"
    MQL = "mql"

    @classmethod
    def of(cls, stage: str, express: bool) -> Priority:
        if stage == "mql":
            return cls.MQL
        return cls.EXPRESS_SQL if express else cls.SQL


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Windows(_Frozen):
    """Seconds from assignment to first touch, per priority (unset: inherit)."""

    express_sql: float | None = Field(default=None, gt=0)
    sql: float | None = Field(default=None, gt=0)
    mql: float | None = Field(default=None, gt=0)

    def get(self, priority: Priority) -> float | None:
        value: float | None = getattr(self, priority.value)
        return value


class CalendarSpec(_Frozen):
    """A business-hours calendar as written in the policy file."""

    timezone: str
    working_days: list[str] = Field(default_factory=lambda: list(WEEKDAYS[:5]))
    hours: list[str] = Field(default_factory=lambda: ["09:00-17:00"])
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @field_validator("working_days")
    @classmethod
    def _weekdays(cls, value: list[str]) -> list[str]:
        days = [d.lower()[:3] for d in value]
        unknown = [d for d, n in zip(value, days, strict=True) if n not in WEEKDAYS]
        if unknown or not days:
            raise ValueError(f"working_days must be names from {list(WEEKDAYS)}, got {value}")
        return days

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("hours needs at least one 'HH:MM-HH:MM' interval")
        for interval in value:
            _parse_interval(interval)
        return value

    def build(self) -> BusinessCalendar:
        try:
            return BusinessCalendar(
                zone=ZoneInfo(self.timezone),
                working_days=frozenset(WEEKDAYS.index(d) for d in self.working_days),
                hours=tuple(sorted(_parse_interval(h) for h in self.hours)),
                holidays=frozenset(self.holidays),
            )
        except ValueError as exc:
            raise ValueError(f"hours {self.hours}: {exc}") from exc


def _working_day_seconds(calendar: BusinessCalendar) -> float:
    """The working time of one working day (its local intervals)."""
    return 60.0 * sum(end - start for start, end in calendar.hours)


def _parse_interval(text: str) -> tuple[int, int]:
    match = _HOURS.match(text.strip())
    if not match:
        raise ValueError(f"working hours {text!r} must look like '09:00-17:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or not start < end <= 24 * 60:
        raise ValueError(f"working hours {text!r}: start must be before end, end at most 24:00")
    return start, end


class AttemptsRule(_Frozen):
    """At least ``count`` contact attempts within ``within_business_days`` of the
    assignment."""

    count: int = Field(ge=1)
    within_business_days: float = Field(gt=0)


class AttemptsRules(_Frozen):
    """Minimum contact attempts per assignment stage (unset: none, or inherit)."""

    sql: AttemptsRule | None = None
    mql: AttemptsRule | None = None

    def get(self, stage: str) -> AttemptsRule | None:
        value: AttemptsRule | None = getattr(self, stage, None)
        return value


class TeamPolicy(_Frozen):
    """A team's overrides of the defaults."""

    calendar: str | None = Field(default=None, description="a name under 'calendars'")
    assign_seconds: float | None = Field(default=None, gt=0)
    first_touch_seconds: Windows = Windows()
    attempts: AttemptsRules = AttemptsRules()


DEFAULT_WINDOWS = Windows(express_sql=300, sql=3600, mql=86_400)


class SlaPolicy(_Frozen):
    """A validated policy file. ``version`` names it on every clock and event."""

    name: str = Field(min_length=1)
    warn_at_fractions: list[float] = Field(default_factory=lambda: [0.5, 0.8])
    assign_seconds: float = Field(default=60, gt=0)
    assign_stages: list[str] = Field(
        default_factory=lambda: ["sql"],
        description="transitions to these stages open an assign clock (sql, mql)",
    )
    first_touch_seconds: Windows = DEFAULT_WINDOWS
    attempts: AttemptsRules = Field(
        default=AttemptsRules(), description="minimum contact attempts per stage (sql, mql)"
    )
    calendar: str | None = Field(default=None, description="default calendar; none: 24/7")
    calendars: dict[str, CalendarSpec] = Field(default_factory=dict)
    teams: dict[str, TeamPolicy] = Field(default_factory=dict)
    content_hash: str = ""
    _built_calendars: dict[str, BusinessCalendar] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._built_calendars.update({n: spec.build() for n, spec in self.calendars.items()})

    @field_validator("warn_at_fractions")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < f < 1 for f in value):
            raise ValueError(f"each warning fraction must be between 0 and 1 (exclusive): {value}")
        return sorted(set(value))

    @field_validator("assign_stages")
    @classmethod
    def _stages(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in ("sql", "mql")]
        if unknown:
            raise ValueError(f"assign_stages may name sql and mql only, got {unknown}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _consistent(self) -> SlaPolicy:
        missing = [p.value for p in Priority if self.first_touch_seconds.get(p) is None]
        if missing:
            raise ValueError(f"first_touch_seconds needs a default for {missing}")
        names = {self.calendar} | {t.calendar for t in self.teams.values()}
        unknown = sorted(n for n in names if n is not None and n not in self.calendars)
        if unknown:
            raise ValueError(f"calendar {unknown[0]!r} is not defined under 'calendars'")
        return self

    @property
    def version(self) -> str:
        return f"{self.name}@{self.content_hash}"

    def plan(
        self, started_at: datetime, stage: str, express: bool, team: str | None = None
    ) -> ClockPlan:
        """The first-touch clock for an assignment: its window, deadline and warnings."""
        priority = Priority.of(stage, express)
        team_policy = self.teams.get(team or "", TeamPolicy())
        window = team_policy.first_touch_seconds.get(priority)
        if window is None:
            window = self.first_touch_seconds.get(priority)
        assert window is not None  # the validator guarantees defaults
        return self._business_plan(started_at, priority, window, team_policy)

    def plan_attempts(
        self, started_at: datetime, stage: str, express: bool, team: str | None = None
    ) -> tuple[AttemptsRule, ClockPlan] | None:
        """The attempts clock for an assignment, if its stage asks for attempts: the rule
        and its plan. A business day is one working day of the team's calendar (24 hours
        without one), so the deadline is that many working days later, warnings at the
        same fractions as the first-touch clock's."""
        team_policy = self.teams.get(team or "", TeamPolicy())
        rule = team_policy.attempts.get(stage) or self.attempts.get(stage)
        if rule is None:
            return None
        calendar = self._calendar(team_policy.calendar or self.calendar)
        day = _working_day_seconds(calendar) if calendar else 86_400.0
        window = rule.within_business_days * day
        return rule, self._business_plan(
            started_at, Priority.of(stage, express), window, team_policy
        )

    def _business_plan(
        self, started_at: datetime, priority: Priority, window: float, team_policy: TeamPolicy
    ) -> ClockPlan:
        """A window counted in the team's calendar (round the clock without one)."""
        calendar_name = team_policy.calendar or self.calendar
        calendar = self._calendar(calendar_name)
        add = calendar.add if calendar else wall_clock_add
        fractions = self.warn_at_fractions
        warnings = tuple(RiskWarning(f, add(started_at, f * window)) for f in fractions)
        return ClockPlan(
            priority=priority,
            window_seconds=window,
            calendar=calendar_name,
            deadline_at=add(started_at, window),
            warnings=warnings,
        )

    def plan_assign(self, qualified_at: datetime, stage: str, express: bool) -> ClockPlan:
        """The assign clock a qualifying transition opens: the default time-to-assign
        target (the team is not known until the router picks a pool), wall-clock."""
        window = self.assign_seconds
        return ClockPlan(
            priority=Priority.of(stage, express),
            window_seconds=window,
            calendar=None,
            deadline_at=wall_clock_add(qualified_at, window),
            warnings=tuple(
                RiskWarning(f, wall_clock_add(qualified_at, f * window))
                for f in self.warn_at_fractions
            ),
        )

    def assign_target_seconds(self, team: str | None = None) -> float:
        """Time-to-assign target (qualifying action → assignment); always wall-clock."""
        override = self.teams.get(team or "", TeamPolicy()).assign_seconds
        return override if override is not None else self.assign_seconds

    def counted_seconds(self, calendar_name: str | None, start: datetime, end: datetime) -> float:
        """Seconds the clock ran between ``start`` and ``end`` under ``calendar_name``."""
        calendar = self._calendar(calendar_name)
        if calendar is None:
            return max(0.0, (end - start).total_seconds())
        return calendar.elapsed(start, end)

    def _calendar(self, name: str | None) -> BusinessCalendar | None:
        """A calendar by name; an unknown name (a clock opened under an older policy)
        counts round the clock."""
        return None if name is None else self._built_calendars.get(name)

    def with_default_windows(
        self, express_sql: float | None = None, sql: float | None = None, mql: float | None = None
    ) -> SlaPolicy:
        """Override the default first-touch windows (``BATON_SLA_*_SECONDS``); the
        version changes with them, so events still name exactly what was applied."""
        given = {"express_sql": express_sql, "sql": sql, "mql": mql}
        overrides = {k: v for k, v in given.items() if v}
        if not overrides:
            return self
        windows = self.first_touch_seconds.model_copy(update=overrides)
        tag = ",".join(f"{k}={v:g}" for k, v in sorted(overrides.items()))
        digest = hashlib.sha256(f"{self.content_hash}|{tag}".encode()).hexdigest()[:12]
        return self.model_copy(update={"first_touch_seconds": windows, "content_hash": digest})


@dataclass(frozen=True)
class RiskWarning:
    """An ``at_risk`` event due at ``at``, when ``fraction`` of the window has run."""

    fraction: float
    at: datetime


@dataclass(frozen=True)
class ClockPlan:
    """What a clock will fire, decided once when it opens."""

    priority: Priority
    window_seconds: float
    calendar: str | None
    deadline_at: datetime
    warnings: tuple[RiskWarning, ...]


class PolicyError(ValueError):
    """The policy file is invalid; the message names the file and the field."""


def parse_policy(text: str, origin: str = "<policy>") -> SlaPolicy:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{origin}: must be a mapping with at least 'name'")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    try:
        return SlaPolicy.model_validate({**data, "content_hash": digest})
    except ValueError as exc:
        raise PolicyError(f"{origin}: {exc}") from exc


def load_policy(path: Path | None = None) -> SlaPolicy:
    """The policy in ``path``, or the shipped defaults."""
    if path is None:
        text = files("baton_shared").joinpath("default_sla_policy.yaml").read_text()
        return parse_policy(text, "default_sla_policy.yaml")
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the SLA policy file: {exc}") from exc
    return parse_policy(text, str(path))


class SlaPolicySettings(ServiceSettings):
    """The SLA policy as configured: read by the SLA monitor (its clocks) and by the
    router (the due time it tells the rep), so the two always agree."""

    policy_file: Path | None = Field(
        default=None,
        alias="BATON_SLA_POLICY_FILE",
        description="SLA policy YAML; unset: the shipped default_sla_policy.yaml",
    )
    express_sql_seconds: float | None = Field(
        default=None,
        gt=0,
        alias="BATON_SLA_EXPRESS_SQL_SECONDS",
        description="Overrides the policy's default express SQL first-touch window",
    )
    sql_seconds: float | None = Field(
        default=None,
        gt=0,
        alias="BATON_SLA_SQL_SECONDS",
        description="Overrides the policy's default SQL first-touch window",
    )
    mql_seconds: float | None = Field(
        default=None,
        gt=0,
        alias="BATON_SLA_MQL_SECONDS",
        description="Overrides the policy's default MQL (SDR task) first-touch window",
    )

    def sla_policy(self) -> SlaPolicy:
        """The policy file (or the shipped default) with the window overrides applied."""
        return load_policy(self.policy_file).with_default_windows(
            express_sql=self.express_sql_seconds, sql=self.sql_seconds, mql=self.mql_seconds
        )
