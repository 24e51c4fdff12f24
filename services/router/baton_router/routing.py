"""Which rep gets this lead? Pure: the lead's facts, the team and the rules in, a decision
(or None: queue it) out. The store loads the inputs and writes the result.

In order:
1. **Account owner first**: a lead from a domain a rep owns goes to that rep when they
   are available and have capacity (otherwise on to the next steps).
2. **Express leads** (demo requests, ...) go to the express pool (the closers), when it
   has an eligible rep; otherwise they are routed like any other SQL rather than wait.
3. **Routing rules**, in order: the first whose conditions all match names the pool.
4. No rule matched: every rep, round robin (the ``default`` pool).

Inside a pool only *eligible* reps compete: available (status, working hours in their
time zone, out of office), under capacity, webhook not disabled, not excluded (the rep
a breached lead is being taken from), and whose skills cover the lead's territory (a rep
with regions ``["emea"]`` takes only EMEA leads; an empty list takes any). When nobody
is eligible the lead waits in the queue.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from baton_router.availability import Calendar, is_available
from baton_router.strategies import Candidate, Strategy, choose, has_capacity

SKILL_FIELDS = {
    "regions": "region",
    "industries": "industry",
    "segments": "segment",
    "languages": "language",
}
OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "exists")
DEFAULT_POOL = "default"


@dataclass(frozen=True)
class LeadFacts:
    """What routing may look at: the transition's numbers and the lead's attributes."""

    lead_id: str
    express: bool = False
    domain: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        if name == "express":
            return self.express
        if name == "domain":
            return self.domain
        return self.attributes.get(name)


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any = None

    def matches(self, lead: LeadFacts) -> bool:
        actual = lead.get(self.field)
        if self.op == "exists":
            return (actual is not None) == bool(self.value if self.value is not None else True)
        if actual is None:
            return self.op in ("ne", "not_in")
        if isinstance(actual, str):
            actual = actual.lower()
        value = _lower(self.value)
        try:
            match self.op:
                case "eq":
                    return bool(actual == value)
                case "ne":
                    return bool(actual != value)
                case "in":
                    return actual in value
                case "not_in":
                    return actual not in value
                case "gt":
                    return bool(actual > value)
                case "gte":
                    return bool(actual >= value)
                case "lt":
                    return bool(actual < value)
                case "lte":
                    return bool(actual <= value)
                case "contains":
                    return str(value) in str(actual)
        except TypeError:
            return False  # e.g. a numeric comparison against a text attribute
        raise ValueError(f"unknown operator {self.op!r}")


def _lower(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list | tuple):
        return [_lower(v) for v in value]
    return value


@dataclass(frozen=True)
class Rule:
    rule_id: uuid.UUID
    pool_id: uuid.UUID
    conditions: tuple[Condition, ...]

    def matches(self, lead: LeadFacts) -> bool:
        return all(c.matches(lead) for c in self.conditions)


@dataclass(frozen=True)
class Pool:
    pool_id: uuid.UUID
    name: str
    strategy: Strategy
    members: tuple[uuid.UUID, ...]
    express: bool = False
    current: dict[uuid.UUID, float] = field(default_factory=dict)  # weighted RR state


@dataclass(frozen=True)
class RepState:
    rep_id: uuid.UUID
    status: str = "online"
    calendar: Calendar = field(default_factory=Calendar)
    capacity: int | None = None
    weight: int = 1
    skills: dict[str, list[str]] = field(default_factory=dict)
    open_leads: int = 0
    last_turn: int | None = None
    webhook_disabled: bool = False


@dataclass(frozen=True)
class Decision:
    rep_id: uuid.UUID
    strategy: str  # account_owner | round_robin | weighted | least_loaded
    pool_id: uuid.UUID | None  # None: the default pool or account ownership
    pool_name: str
    reason: str
    pool_current: dict[uuid.UUID, float] = field(default_factory=dict)


def skills_cover(skills: dict[str, list[str]], lead: LeadFacts) -> bool:
    for skill, attribute in SKILL_FIELDS.items():
        wanted = lead.get(attribute)
        allowed = [s.lower() for s in skills.get(skill, [])]
        if allowed and wanted is not None and str(wanted).lower() not in allowed:
            return False
    return True


def eligible(rep: RepState, lead: LeadFacts, now: datetime, exclude: frozenset[uuid.UUID]) -> bool:
    return (
        rep.rep_id not in exclude
        and not rep.webhook_disabled
        and rep.capacity != 0
        and (rep.capacity is None or rep.open_leads < rep.capacity)
        and is_available(rep.status, rep.calendar, now)
        and skills_cover(rep.skills, lead)
    )


def decide(
    lead: LeadFacts,
    reps: list[RepState],
    pools: list[Pool],
    rules: list[Rule],
    accounts: dict[str, uuid.UUID],
    now: datetime,
    exclude: frozenset[uuid.UUID] = frozenset(),
) -> Decision | None:
    """The routing decision for ``lead`` at ``now``, or None when nobody can take it."""
    by_id = {r.rep_id: r for r in reps}
    owner = accounts.get(lead.domain or "") if lead.domain else None
    if owner is not None and owner in by_id:
        rep = by_id[owner]
        # Ownership overrides territory: the owner takes the account's leads whatever
        # their skills say.
        if eligible(rep, LeadFacts(lead.lead_id, lead.express), now, exclude):
            return Decision(
                owner, "account_owner", None, "account_owner", f"{lead.domain} is owned by this rep"
            )
    pools_by_id = {p.pool_id: p for p in pools}
    if lead.express:
        for pool in pools:
            if pool.express and (d := _in_pool(pool, by_id, lead, now, exclude, "express lead")):
                return d
    for rule in rules:
        if rule.matches(lead) and rule.pool_id in pools_by_id:
            return _in_pool(
                pools_by_id[rule.pool_id], by_id, lead, now, exclude, f"rule {rule.rule_id}"
            )
    default = Pool(uuid.UUID(int=0), DEFAULT_POOL, Strategy.ROUND_ROBIN, tuple(by_id))
    return _in_pool(default, by_id, lead, now, exclude, "no rule matched")


def _in_pool(
    pool: Pool,
    reps: dict[uuid.UUID, RepState],
    lead: LeadFacts,
    now: datetime,
    exclude: frozenset[uuid.UUID],
    why: str,
) -> Decision | None:
    candidates = [
        Candidate(
            rep_id=r.rep_id,
            last_turn=r.last_turn,
            weight=r.weight,
            current=pool.current.get(r.rep_id, 0.0),
            open_leads=r.open_leads,
            capacity=r.capacity,
        )
        for m in pool.members
        if (r := reps.get(m)) is not None and eligible(r, lead, now, exclude)
    ]
    choice = choose(pool.strategy, [c for c in candidates if has_capacity(c)])
    if choice is None:
        return None
    is_default = pool.name == DEFAULT_POOL and pool.pool_id.int == 0
    return Decision(
        choice.rep_id,
        pool.strategy.value,
        None if is_default else pool.pool_id,
        pool.name,
        why,
        choice.current,
    )


_DOMAIN_TRAITS = ("company_domain", "domain", "website")
_ATTRIBUTE_TRAITS = (
    "region",
    "country",
    "industry",
    "segment",
    "company_size",
    "employees",
    "language",
    "title",
    "company",
)


def lead_facts(transition: Any) -> LeadFacts:
    """What routing knows about the lead behind a transition: its numbers, and the traits
    the transition carries (``traits``, when the scorer adds them; the email domain from a
    lead id that is an email)."""
    traits: dict[str, Any] = dict(getattr(transition, "traits", None) or {})
    attributes: dict[str, Any] = {
        "score": transition.score,
        "fit": transition.fit,
        "engagement": transition.engagement,
        "stage": str(transition.to_stage),
        "trigger_event": transition.trigger_event,
    }
    for name in _ATTRIBUTE_TRAITS:
        if traits.get(name) is not None:
            attributes[name] = traits[name]
    return LeadFacts(
        lead_id=transition.lead_id,
        express=bool(transition.express),
        domain=_domain(traits, transition.lead_id),
        attributes=attributes,
    )


def _domain(traits: dict[str, Any], lead_id: str) -> str | None:
    for name in _DOMAIN_TRAITS:
        if isinstance(traits.get(name), str) and traits[name].strip():
            return normalise_domain(traits[name])
    email = traits.get("email") if isinstance(traits.get("email"), str) else lead_id
    if "@" in email:
        return normalise_domain(email.rsplit("@", 1)[1])
    return None


def normalise_domain(raw: str) -> str:
    """``https://www.Acme.com/about`` → ``acme.com``."""
    host = raw.strip().lower().split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return host.removeprefix("www.").rstrip(".")
