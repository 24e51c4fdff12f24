"""A lead's journey: the few facts the conversion report needs, folded from the
records of ``leads.transitions``, ``leads.assignments``, ``leads.activity``,
``leads.sla``, ``leads.merges`` and (first attributed touch) ``leads.events``. Pure.

Every fact is kept as a first (earliest by event time, ties by record id) or a latest
(the newest assignment), so folding is idempotent and commutative: records may arrive
in any order, twice, or be re-read from the beginning into a journey that already
holds them, and the journey comes out the same. That is what lets the SLA monitor's
reporting store and ``baton funnel`` fold the same records with :class:`Ledger` and
agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from baton_shared.schemas import (
    Activity,
    ActivityKind,
    Assignment,
    LeadEvent,
    LeadMerged,
    SlaEvent,
    SlaMeasure,
    SlaStatus,
    Stage,
    Transition,
)

#: Contact times a journey keeps while it has no SQL yet (the latest ones).
MAX_TOUCHES = 32
_QUALIFYING = (Stage.MQL, Stage.SQL)
_SEGMENT_BOUNDS = ((100, "smb"), (1000, "mid_market"))  # as the router's territory segments
_EMPLOYEE_TRAITS = ("employees", "company_size", "employee_count", "number_of_employees")

Fact = Transition | Assignment | Activity | SlaEvent | LeadEvent | LeadMerged


@dataclass
class Journey:
    """One lead's facts. ``merged_into`` names the survivor of a merge (the journey is
    then empty and its later records count for the survivor)."""

    lead_id: str
    merged_into: str | None = None
    entered_at: datetime | None = None  # first MQL or SQL, whichever came first
    mql_at: datetime | None = None
    sql_at: datetime | None = None
    accepted_at: datetime | None = None
    rejected_at: datetime | None = None
    rejected_code: str | None = None
    rejected_id: str | None = None
    lost_at: datetime | None = None
    lost_code: str | None = None
    lost_id: str | None = None
    won_at: datetime | None = None
    # From the earliest qualifying transition:
    attributed_at: datetime | None = None
    attributed_id: str | None = None
    rules_version: str | None = None
    industry: str | None = None
    segment: str | None = None
    # From the earliest event carrying UTM parameters (first attributed touch):
    touch_at: datetime | None = None
    touch_id: str | None = None
    source: str | None = None
    campaign: str | None = None
    # From the newest assignment:
    assigned_at: datetime | None = None
    assignment_id: str | None = None
    pool: str | None = None
    rep_id: str | None = None
    contacted_ats: tuple[datetime, ...] = ()
    met_clocks: tuple[str, ...] = ()
    breached_clocks: tuple[str, ...] = ()

    @property
    def first_contact_at(self) -> datetime | None:
        """The first ``contacted`` at or after the lead became SQL."""
        if self.sql_at is None:
            return None
        return next((t for t in self.contacted_ats if t >= self.sql_at), None)

    @property
    def sla_breached(self) -> bool:
        """A rep's first-touch clock of the lead breached (and was not corrected to met)."""
        return bool(set(self.breached_clocks) - set(self.met_clocks))

    def as_row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Journey:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in row.items() if k in names}
        for name in ("contacted_ats", "met_clocks", "breached_clocks"):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)

    def absorb(self, other: Journey) -> None:
        """Fold another journey's facts into this one (a merge, or a fact's journey)."""
        for name in ("mql_at", "sql_at", "accepted_at", "won_at"):
            setattr(self, name, _earliest(getattr(self, name), getattr(other, name)))
        self._first(other, "rejected", ("rejected_code",))
        self._first(other, "lost", ("lost_code",))
        self._first(other, "attributed", ("rules_version", "industry", "segment"))
        self._first(other, "touch", ("source", "campaign"))
        mine = (self.assigned_at, self.assignment_id or "")
        theirs = (other.assigned_at, other.assignment_id or "")
        if other.assigned_at is not None and (self.assigned_at is None or theirs > mine):
            self.assigned_at, self.assignment_id = other.assigned_at, other.assignment_id
            self.pool, self.rep_id = other.pool, other.rep_id
        self.met_clocks = _union(self.met_clocks, other.met_clocks)
        self.breached_clocks = _union(self.breached_clocks, other.breached_clocks)
        self.contacted_ats = _pruned({*self.contacted_ats, *other.contacted_ats}, self.sql_at)
        starts = [t for t in (self.mql_at, self.sql_at) if t is not None]
        self.entered_at = min(starts) if starts else None

    def _first(self, other: Journey, prefix: str, carried: Iterable[str]) -> None:
        at, key = f"{prefix}_at", f"{prefix}_id"
        theirs = (getattr(other, at), getattr(other, key) or "")
        if theirs[0] is None:
            return
        mine = (getattr(self, at), getattr(self, key) or "")
        if mine[0] is None or theirs < mine:
            for name in (at, key, *carried):
                setattr(self, name, getattr(other, name))


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return min(a, b)


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({*a, *b}))


def _pruned(times: set[datetime], sql_at: datetime | None) -> tuple[datetime, ...]:
    """Once the SQL is known only the first contact after it matters; before that, the
    latest :data:`MAX_TOUCHES` are kept."""
    ordered = sorted(times)
    if sql_at is not None:
        after = [t for t in ordered if t >= sql_at]
        return tuple(after[:1])
    return tuple(ordered[-MAX_TOUCHES:])


def segment_of(traits: dict[str, Any]) -> str | None:
    """``smb`` (< 100 employees), ``mid_market`` (100 to 999), ``enterprise``; the lead's own
    ``segment`` trait wins; None when the size is unknown."""
    if isinstance(traits.get("segment"), str) and traits["segment"].strip():
        return traits["segment"].strip().lower()
    company = traits.get("company") if isinstance(traits.get("company"), dict) else {}
    for source in (traits, company):
        for name in _EMPLOYEE_TRAITS:
            size = _number(source.get(name))
            if size is not None:
                return next((s for bound, s in _SEGMENT_BOUNDS if size < bound), "enterprise")
    return None


def industry_of(traits: dict[str, Any]) -> str | None:
    company = traits.get("company") if isinstance(traits.get("company"), dict) else {}
    raw = traits.get("industry") or company.get("industry")
    return raw.strip().lower() if isinstance(raw, str) and raw.strip() else None


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        text = raw.replace(",", "").replace("+", "").strip().rsplit("-", 1)[-1].strip()
        try:
            return float(text)
        except ValueError:
            return None
    return None


def journey_of(fact: Fact) -> Journey | None:
    """The journey a single record says, keyed by its lead; None for a record that says
    nothing the report uses."""
    j = Journey(lead_id=fact.lead_id if not isinstance(fact, LeadMerged) else fact.survivor_id)
    if isinstance(fact, Transition):
        at = fact.occurred_at
        if fact.to_stage == Stage.MQL:
            j.mql_at = at
        elif fact.to_stage == Stage.SQL:
            j.sql_at = at
        elif fact.to_stage == Stage.CUSTOMER:
            j.won_at = at
        if fact.to_stage in _QUALIFYING:
            j.attributed_at, j.attributed_id = at, fact.transition_id
            j.rules_version = fact.rules_version
            j.industry, j.segment = industry_of(fact.traits), segment_of(fact.traits)
    elif isinstance(fact, Assignment):
        j.assigned_at, j.assignment_id = fact.assigned_at, fact.assignment_id
        j.pool, j.rep_id = fact.pool, fact.rep_id
    elif isinstance(fact, Activity):
        _activity(j, fact)
    elif isinstance(fact, SlaEvent):
        if fact.measure != SlaMeasure.FIRST_TOUCH or fact.assignment_id is None:
            return None
        if fact.status == SlaStatus.MET:
            j.met_clocks = (fact.clock_id,)
        elif fact.status == SlaStatus.BREACHED:
            j.breached_clocks = (fact.clock_id,)
        else:
            return None
    elif isinstance(fact, LeadEvent):
        if not fact.campaign:
            return None
        j.touch_at, j.touch_id = fact.occurred_at, fact.event_id
        j.source, j.campaign = fact.campaign.get("source"), fact.campaign.get("name")
    else:
        return None
    j.absorb(Journey(lead_id=j.lead_id))  # derive entered_at
    return j


def _activity(j: Journey, a: Activity) -> None:
    if a.kind == ActivityKind.ACCEPTED:
        j.accepted_at = a.occurred_at
    elif a.kind == ActivityKind.WON:
        j.won_at = a.occurred_at
    elif a.kind == ActivityKind.CONTACTED:
        j.contacted_ats = (a.occurred_at,)
    elif a.kind == ActivityKind.REJECTED:
        j.rejected_at, j.rejected_id, j.rejected_code = a.occurred_at, a.activity_id, a.disposition
    elif a.kind == ActivityKind.LOST:
        j.lost_at, j.lost_id, j.lost_code = a.occurred_at, a.activity_id, a.disposition


def aliases_of(fact: Fact) -> tuple[str, str] | None:
    """``(merged, survivor)`` when the record joins two ids into one person: a merge on
    ``leads.merges``, or an event whose anonymous id is not its lead's (an identify
    stitched that browser's history onto the known lead)."""
    if isinstance(fact, LeadMerged):
        return fact.merged_id, fact.survivor_id
    if isinstance(fact, LeadEvent) and fact.anonymous_id and fact.anonymous_id != fact.lead_id:
        return fact.anonymous_id, fact.lead_id
    return None


def lead_ids_of(fact: Fact) -> set[str]:
    """Every lead id a record touches (to load those journeys before folding it)."""
    pair = aliases_of(fact)
    ids = set(pair) if pair else set()
    if not isinstance(fact, LeadMerged):
        ids.add(fact.lead_id)
    return ids


@dataclass
class Ledger:
    """Journeys by lead id, and the fold of records into them. ``changed`` names the
    journeys a fold touched (for a store to write back)."""

    journeys: dict[str, Journey] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)

    def resolve(self, lead_id: str) -> str:
        seen = {lead_id}
        while (j := self.journeys.get(lead_id)) is not None and j.merged_into is not None:
            lead_id = j.merged_into
            if lead_id in seen:
                break
            seen.add(lead_id)
        return lead_id

    def journey(self, lead_id: str) -> Journey:
        if lead_id not in self.journeys:
            self.journeys[lead_id] = Journey(lead_id=lead_id)
        return self.journeys[lead_id]

    def fold(self, facts: Iterable[Fact]) -> None:
        for fact in facts:
            pair = aliases_of(fact)
            if pair is not None:
                self.merge(*pair)
            mine = journey_of(fact)
            if mine is not None:
                lead = self.resolve(mine.lead_id)
                self.journey(lead).absorb(mine)
                self.changed.add(lead)

    def merge(self, merged_id: str, survivor_id: str) -> None:
        """The merged id's facts move to the survivor; its later records follow them. An
        id already merged away stays with its first survivor (a browser shared by two
        people joins the first one who signed in, as the scorer's stitching does)."""
        merged, survivor = self.journey(merged_id), self.resolve(survivor_id)
        if merged.merged_into is not None or merged_id == survivor:
            return
        self.journey(survivor).absorb(merged)
        self.journeys[merged_id] = Journey(lead_id=merged_id, merged_into=survivor)
        self.changed |= {merged_id, survivor}

    def live(self) -> list[Journey]:
        """The journeys of leads that were not merged away."""
        return [j for j in self.journeys.values() if j.merged_into is None]
