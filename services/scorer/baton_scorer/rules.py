"""Scoring rules: loaded from YAML, validated, and versioned by name plus content hash.

The format is documented in docs/scoring.md (every field: docs/examples/rules.yaml);
``default_rules.yaml`` is the annotated default. Validation errors name the file, the
line and the field
(``rules.yaml line 12: engagement.rules[0].points: Input should be a valid number``).
Pure: no I/O except :func:`load_rules` reading the file it is given.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from baton_scorer.accounts_rules import AccountRules
from baton_scorer.outcomes import Outcomes
from baton_scorer.qualification_rules import Qualification
from baton_scorer.yaml_errors import describe
from baton_shared.schemas import EventType

DEFAULT_GROUP = "default"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Thresholds(_Frozen):
    mql: float = 50
    sql: float = 100
    hysteresis: float = Field(
        default=10,
        ge=0,
        description="After a recycle, re-qualifying as SQL needs sql + hysteresis points",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.sql <= self.mql:
            raise ValueError(
                f"thresholds.sql ({self.sql}) must be above thresholds.mql ({self.mql})"
            )
        return self


class Match(_Frozen):
    """What an event must look like; every given field must match (AND)."""

    type: EventType | None = None
    event: str | list[str] | None = Field(default=None, description="track event name(s)")
    page_category: str | list[str] | None = None
    url: str | None = Field(default=None, description="glob on the page URL or path")
    properties: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if not self.model_fields_set:
            raise ValueError(
                "match needs at least one of type, event, page_category, url, properties"
            )
        return self

    def matches(self, event: Any) -> bool:
        if self.type is not None and event.type != self.type:
            return False
        if self.event is not None and not _one_of(event.name, self.event):
            return False
        if self.page_category is not None and not _one_of(event.page_category, self.page_category):
            return False
        if self.url is not None:
            url_matches = self._url_pattern
            if not any(url_matches(u) for u in _urls(event)):
                return False
        if not self.properties:
            return True
        props = event.properties
        return all(props.get(k) == v for k, v in self.properties.items())

    @cached_property
    def _url_pattern(self) -> Any:
        """``fnmatch.fnmatchcase`` against ``url``, compiled once."""
        return re.compile(fnmatch.translate(self.url or "")).match

    @cached_property
    def needs_payload(self) -> bool:
        """Whether matching looks past the event's type, name and page category."""
        return self.url is not None or bool(self.properties)

    def matches_shape(self, shape: Any) -> bool:
        """The type, name and page-category part of :meth:`matches`."""
        if self.type is not None and shape.type != self.type:
            return False
        if self.event is not None and not _one_of(shape.name, self.event):
            return False
        return self.page_category is None or _one_of(shape.page_category, self.page_category)


def _one_of(value: str | None, wanted: str | list[str]) -> bool:
    return value is not None and (value == wanted if isinstance(wanted, str) else value in wanted)


def _urls(event: Any) -> list[str]:
    props = event.properties
    out = [props.get("url"), props.get("path")] if props else []
    context = event.context
    page = context.get("page") if context and isinstance(context, dict) else None
    if isinstance(page, dict):
        out += [page.get("url"), page.get("path")]
    return [u for u in out if isinstance(u, str)]


class Cap(_Frozen):
    """At most ``points`` from one rule per window (fixed windows in event time, UTC)."""

    points: float = Field(gt=0)
    window_hours: float = Field(default=24, gt=0)


class EngagementRule(_Frozen):
    id: str | None = None
    match: Match
    points: float
    group: str = DEFAULT_GROUP
    cap: Cap | None = None
    first_time_only: bool = False

    @model_validator(mode="after")
    def _caps_are_for_positive_points(self) -> EngagementRule:
        if (self.cap or self.first_time_only) and self.points <= 0:
            raise ValueError("cap and first_time_only need positive points")
        return self


class Group(_Frozen):
    half_life_days: float = Field(gt=0)


class EngagementRules(_Frozen):
    half_life_days: float = Field(default=14, gt=0)
    groups: dict[str, Group] = Field(default_factory=dict)
    events: dict[str, float] = Field(default_factory=dict)
    pages: dict[str, float] = Field(default_factory=dict)
    rules: list[EngagementRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _groups_exist(self) -> EngagementRules:
        for i, rule in enumerate(self.rules):
            if rule.group != DEFAULT_GROUP and rule.group not in self.groups:
                raise ValueError(
                    f"engagement.rules[{i}].group {rule.group!r} is not in engagement.groups"
                )
        return self


class Range(_Frozen):
    min: float | None = None
    max: float | None = None
    points: float


class EmailDomainRules(_Frozen):
    free_mail: list[str] = Field(default_factory=list)
    free_mail_points: float = 0
    competitors: list[str] = Field(default_factory=list, description="disqualify the lead")
    points: dict[str, float] = Field(default_factory=dict, description="domain -> points")


class TraitNames(_Frozen):
    """Which trait holds each fit attribute."""

    title: str = "title"
    company_size: str = "employees"
    industry: str = "industry"
    country: str = "country"


class FitRules(_Frozen):
    traits: TraitNames = TraitNames()
    title: dict[str, float] = Field(default_factory=dict)
    company_size: list[Range] = Field(default_factory=list)
    industry: dict[str, float] = Field(default_factory=dict)
    country: dict[str, float] = Field(default_factory=dict)
    email_domains: EmailDomainRules = EmailDomainRules()

    @model_validator(mode="after")
    def _patterns_compile(self) -> FitRules:
        for pattern in self.title:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"fit.title pattern {pattern!r}: {exc}") from exc
        return self


class Recycle(_Frozen):
    cold_days: float | None = Field(default=30, gt=0)
    below_score: float | None = Field(default=None)


class Rules(_Frozen):
    name: str = Field(min_length=1)
    thresholds: Thresholds = Thresholds()
    engagement: EngagementRules = EngagementRules()
    express_lanes: list[str | Match] = Field(default_factory=list)
    worth_nothing: list[str | Match] = Field(
        default_factory=list,
        description="track event names or matchers deliberately worth no points (not scored;"
        " a name that the rules score is an error)",
    )
    fit: FitRules = FitRules()
    qualification: Qualification = Qualification()
    recycle: Recycle = Recycle()
    accounts: AccountRules | None = Field(
        default=None, description="Account thresholds and fit; without it, no roll-up"
    )
    outcomes: Outcomes = Outcomes()
    content_hash: str = ""

    @model_validator(mode="after")
    def _recycle_below_sql(self) -> Rules:
        below = self.recycle.below_score
        if below is not None and below > self.thresholds.sql - self.thresholds.hysteresis:
            raise ValueError(
                f"recycle.below_score ({below}) must be at most thresholds.sql - "
                f"thresholds.hysteresis ({self.thresholds.sql - self.thresholds.hysteresis})"
            )
        return self

    @model_validator(mode="after")
    def _worth_nothing_is_not_scored(self) -> Rules:
        scored = {*self.engagement.events, *(x for x in self.express_lanes if isinstance(x, str))}
        for rule in self.engagement.rules:
            event = rule.match.event
            scored.update([event] if isinstance(event, str) else event or ())
        for name in self.worth_nothing:
            if isinstance(name, str) and name in scored:
                raise ValueError(f"worth_nothing lists {name!r}, which the rules score")
        return self

    def lists_worth_nothing(self, type_: EventType, name: str | None, category: str | None) -> bool:
        """Whether ``worth_nothing`` names events of this type, name and page category."""
        shape = _Shape(type_, name, category)
        return any(
            name == x and type_ == EventType.TRACK
            if isinstance(x, str)
            else x.matches_shape(shape) and not x.needs_payload
            for x in self.worth_nothing
        )

    @property
    def version(self) -> str:
        """``name@hash``: every transition names the rules that produced it."""
        return f"{self.name}@{self.content_hash}"

    @property
    def half_life_seconds(self) -> float:
        """The default group's half-life."""
        return self.engagement.half_life_days * 86_400

    def group_half_life_seconds(self, group: str) -> float:
        g = self.engagement.groups.get(group)
        return g.half_life_days * 86_400 if g else self.half_life_seconds

    @cached_property
    def title_patterns(self) -> tuple[tuple[re.Pattern[str], float], ...]:
        return tuple((re.compile(p, re.IGNORECASE), pts) for p, pts in self.fit.title.items())

    @cached_property
    def compiled(self) -> CompiledRules:
        return CompiledRules(self)


class CompiledRule:
    """One engagement rule ready to match: its signal label, points and cap."""

    __slots__ = ("cap_points", "group", "half_life", "label", "match", "points", "window_s")

    def __init__(
        self,
        label: str,
        match: Match | None,
        points: float,
        group: str,
        half_life: float,
        cap_points: float | None,
        window_s: float | None,
    ) -> None:
        self.label = label
        self.match = match
        self.points = points
        self.group = group
        self.half_life = half_life
        self.cap_points = cap_points
        self.window_s = window_s  # None with a cap: one window for all time (first time only)


class CompiledRules:
    """Indexes built once per rules version so matching an event is a dict lookup."""

    def __init__(self, rules: Rules) -> None:
        e = rules.engagement
        h = rules.half_life_seconds
        self.by_event: dict[str, list[CompiledRule]] = {}
        self.by_page: dict[str, list[CompiledRule]] = {}
        self.general: list[CompiledRule] = []
        self.group_half_life = {g: rules.group_half_life_seconds(g) for g in e.groups}
        self.group_half_life[DEFAULT_GROUP] = h
        self.rules: dict[str, CompiledRule] = {}
        for name, pts in e.events.items():
            self._add(CompiledRule(f"event:{name}", None, pts, DEFAULT_GROUP, h, None, None))
            self.by_event.setdefault(name, []).append(self.rules[f"event:{name}"])
        for cat, pts in e.pages.items():
            self._add(CompiledRule(f"page:{cat}", None, pts, DEFAULT_GROUP, h, None, None))
            self.by_page.setdefault(cat, []).append(self.rules[f"page:{cat}"])
        for i, r in enumerate(e.rules):
            cap = r.points if r.first_time_only else (r.cap.points if r.cap else None)
            window = None if r.first_time_only else (r.cap.window_hours * 3600 if r.cap else None)
            rule = CompiledRule(
                r.id or f"rule:{i}",
                r.match,
                r.points,
                r.group,
                self.group_half_life[r.group],
                cap,
                window,
            )
            self._add(rule)
            m = r.match
            if (
                m.type in (None, EventType.TRACK)
                and isinstance(m.event, str)
                and not m.page_category
            ):
                self.by_event.setdefault(m.event, []).append(rule)
            else:
                self.general.append(rule)
        self.express_names = frozenset(x for x in rules.express_lanes if isinstance(x, str))
        self.express_matches = tuple(x for x in rules.express_lanes if isinstance(x, Match))
        self.competitors = frozenset(rules.fit.email_domains.competitors)
        self.half_life = h
        self.signal_half_life = {label: r.half_life for label, r in self.rules.items()}
        self.mql = rules.thresholds.mql
        self.sql = rules.thresholds.sql
        self.hysteresis = rules.thresholds.hysteresis
        # Engagement is kept relative to a per-lead reference time; it is moved forward
        # once an event is this far past it, long before 2 ** (t / h) could overflow.
        self.rebase_after = REBASE_HALF_LIVES * min([h, *self.group_half_life.values()])
        self.plans: dict[tuple[Any, str | None, str | None], Plan] = {}

    def _add(self, rule: CompiledRule) -> None:
        if rule.label in self.rules:
            raise ValueError(f"engagement rule id {rule.label!r} is used twice")
        self.rules[rule.label] = rule

    def plan(self, event: Any) -> Plan:
        """What an event of this shape (type, name, page category) is worth: the rules
        it matches for sure, the ones that must still look at its URL or properties, and
        its express lane. Built once per shape, then a dict lookup."""
        key = (event.type, event.name, event.page_category)
        found = self.plans.get(key)
        if found is None:
            if len(self.plans) >= MAX_PLANS:  # unbounded event names: start over
                self.plans.clear()
            found = self.plans[key] = self._make_plan(*key)
        return found

    def _make_plan(self, type_: Any, name: str | None, category: str | None) -> Plan:
        shape = _Shape(type_, name, category)
        candidates: list[CompiledRule] = []
        if type_ == EventType.TRACK and name:
            candidates += self.by_event.get(name, ())
        elif type_ in (EventType.PAGE, EventType.SCREEN) and category:
            candidates += self.by_page.get(category, ())
        candidates += [r for r in self.general if r.match is not None]
        static: list[CompiledRule] = []
        dynamic: list[CompiledRule] = []
        for rule in candidates:
            m = rule.match
            if m is None:
                static.append(rule)
            elif not m.matches_shape(shape):
                continue
            elif m.needs_payload:
                dynamic.append(rule)
            else:
                static.append(rule)
        lane: str | None = None
        lanes: list[Match] = []
        if type_ == EventType.TRACK and name in self.express_names:
            lane = name
        else:
            for m in self.express_matches:
                if not m.matches_shape(shape):
                    continue
                if m.needs_payload:
                    lanes.append(m)
                else:
                    lane = name or category or "express lane"
                    break
        label = name or category or "express lane"
        pending = tuple(lanes) if lane is None else ()
        return Plan(tuple(static), tuple(dynamic), lane, pending, label)


class _Shape:
    """An event reduced to what a plan is keyed on (no URL, no properties)."""

    __slots__ = ("name", "page_category", "type")

    def __init__(self, type_: Any, name: str | None, page_category: str | None) -> None:
        self.type = type_
        self.name = name
        self.page_category = page_category


class Plan:
    """The matching work for one event shape, decided ahead (see CompiledRules.plan)."""

    __slots__ = ("dynamic", "express", "express_label", "express_matches", "static")

    def __init__(
        self,
        static: tuple[CompiledRule, ...],
        dynamic: tuple[CompiledRule, ...],
        express: str | None,
        express_matches: tuple[Match, ...],
        express_label: str,
    ) -> None:
        self.static = static  # match whatever the URL and properties
        self.dynamic = dynamic  # match by shape; still check URL/properties
        self.express = express  # the express lane, when the shape decides it
        self.express_matches = express_matches  # lanes that still check URL/properties
        self.express_label = express_label


MAX_PLANS = 50_000
REBASE_HALF_LIVES = 256


class RulesError(ValueError):
    """The rules file is invalid; the message names the file, the line and the field."""


def parse_rules(text: str, origin: str = "<rules>") -> Rules:
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RulesError(f"{origin}: must be a mapping with at least 'name'")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    try:
        rules = Rules.model_validate({**data, "content_hash": digest})
        rules.compiled  # noqa: B018 - compile now so bad rules fail at load
    except ValidationError as exc:
        raise RulesError(describe(exc, root, origin)) from exc
    except ValueError as exc:
        raise RulesError(f"{origin}: {exc}") from exc
    return rules


def load_rules(path: Path | None = None) -> Rules:
    """The rules in ``path``, or the shipped defaults."""
    if path is None:
        text = files("baton_scorer").joinpath("default_rules.yaml").read_text()
        return parse_rules(text, "default_rules.yaml")
    try:
        text = path.read_text()
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the rules file: {exc}") from exc
    return parse_rules(text, str(path))
