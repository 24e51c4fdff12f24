"""Which rep gets this lead? Pure: the lead's facts, the team and the rules in, a decision
(or None: queue it) out. The store loads the inputs and writes the result.

In order:
1. **Account owner first**: a lead whose account (:func:`baton_shared.accounts.account_of`,
   the scorer's notion too: its company domain, else its email's) a rep owns goes to
   that rep when they are available and have capacity (otherwise on to the next steps).
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

import difflib
import uuid
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from baton_router.availability import Calendar, is_available
from baton_router.strategies import Candidate, Strategy, choose, has_capacity
from baton_router.territory import country_code, is_known_country, language_code, territory
from baton_shared.accounts import account_of
from baton_shared.accounts import normalise_domain as normalise_domain  # re-exported

SKILL_FIELDS = {
    "regions": "region",
    "countries": "country",
    "industries": "industry",
    "segments": "segment",
    "languages": "language",
}
OPERATORS = (
    "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "contains", "ends_with",
    "exists",
)  # fmt: skip
DEFAULT_POOL = "default"
TRAITS_PREFIX = "traits."

# What a rule may look at, and the kind of value each holds. ``traits.<name>`` reaches any
# raw trait as the tracker sent it.
NUMBER, TEXT, BOOL = "number", "text", "bool"
FIELDS: dict[str, str] = {
    "score": NUMBER,
    "fit": NUMBER,
    "engagement": NUMBER,
    "company_size": NUMBER,
    "employees": NUMBER,
    "express": BOOL,
    "stage": TEXT,
    "trigger_event": TEXT,
    "domain": TEXT,
    "email_domain": TEXT,
    "country": TEXT,
    "region": TEXT,
    "segment": TEXT,
    "industry": TEXT,
    "language": TEXT,
    "title": TEXT,
    "company": TEXT,
}
OPS_FOR = {
    NUMBER: ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists"),
    TEXT: ("eq", "ne", "in", "not_in", "contains", "ends_with", "exists"),
    BOOL: ("eq", "ne", "exists"),
}
_CANONICAL = {"country": country_code, "language": language_code}


class InvalidCondition(ValueError):
    """A rule condition that could never work as written; the message says what to fix."""


def check_condition(field_name: str, op: str, value: Any) -> None:
    """Raise :class:`InvalidCondition` unless ``field op value`` is a condition that can
    match: a known field (or ``traits.<name>``), an operator that fits the field's kind,
    and a value of the right shape (countries must be codes or known names, languages
    ISO 639-1 codes)."""
    if op not in OPERATORS:
        raise InvalidCondition(f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    if field_name.startswith(TRAITS_PREFIX):
        if len(field_name) == len(TRAITS_PREFIX):
            raise InvalidCondition("'traits.' needs a trait name, e.g. 'traits.plan'")
        kind = None
    elif field_name in FIELDS:
        kind = FIELDS[field_name]
    else:
        close = difflib.get_close_matches(field_name, FIELDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidCondition(
            f"unknown field {field_name!r}{hint}; use one of {', '.join(FIELDS)}, "
            "or traits.<name> for a raw trait"
        )
    if kind is not None and op not in OPS_FOR[kind]:
        raise InvalidCondition(
            f"{op!r} does not apply to {field_name!r} ({kind}); use one of "
            f"{', '.join(OPS_FOR[kind])}"
        )
    if op == "exists":
        if value is not None and not isinstance(value, bool):
            raise InvalidCondition("'exists' takes true, false or no value")
        return
    if value is None:
        raise InvalidCondition(f"{op!r} needs a value")
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise InvalidCondition(f"{op!r} needs a non-empty list value")
        items = value
    elif op == "between":
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(_is_number(v) for v in value)
            or value[0] > value[1]
        ):
            raise InvalidCondition("'between' needs [min, max]: two numbers, min ≤ max")
        return
    else:
        items = [value]
    if op in ("gt", "gte", "lt", "lte") and not _is_number(value):
        raise InvalidCondition(f"{op!r} needs a number value")
    for item in items:
        _check_value(field_name, kind, item)


def _check_value(field_name: str, kind: str | None, item: Any) -> None:
    if isinstance(item, dict | list):
        raise InvalidCondition(f"{field_name!r}: compare with a single value, not {item!r}")
    if kind == NUMBER and not _is_number(item):
        raise InvalidCondition(f"{field_name!r} is a number; {item!r} is not")
    if kind == BOOL and not isinstance(item, bool):
        raise InvalidCondition(f"{field_name!r} is true or false; {item!r} is not")
    if kind == TEXT and not isinstance(item, str):
        raise InvalidCondition(f"{field_name!r} is text; {item!r} is not (quote it)")
    if field_name == "country" and not is_known_country(item):
        raise InvalidCondition(
            f"country {item!r} is neither an ISO 3166 two-letter code nor a country name "
            "Baton knows; use the code (e.g. 'de')"
        )
    if field_name == "language" and not (len(item) >= 2 and item[:2].isalpha()):
        raise InvalidCondition(f"language {item!r} is not an ISO 639-1 code (e.g. 'de')")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class LeadFacts:
    """What routing may look at: the transition's numbers, the lead's canonical attributes
    (see ``territory``) and its raw traits (``traits.<name>``)."""

    lead_id: str
    express: bool = False
    domain: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        if name == "express":
            return self.express
        if name == "domain":
            return self.domain
        if name.startswith(TRAITS_PREFIX):
            return self.traits.get(name[len(TRAITS_PREFIX) :])
        return self.attributes.get(name)


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any = None

    @cached_property
    def canonical_value(self) -> Any:
        """The value as leads' attributes spell it, worked out once per condition."""
        return _canonical(self.field, self.value)

    def matches(self, lead: LeadFacts) -> bool:
        actual = lead.get(self.field)
        if self.op == "exists":
            return (actual is not None) == bool(self.value if self.value is not None else True)
        if actual is None:
            return self.op in ("ne", "not_in")
        if isinstance(actual, str):
            actual = actual.lower()
        value = self.canonical_value
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
                case "between":
                    return bool(value[0] <= actual <= value[1])
                case "contains":
                    return str(value) in str(actual)
                case "ends_with":
                    return str(actual).endswith(str(value))
        except TypeError:
            return False  # e.g. a numeric comparison against a text attribute
        raise ValueError(f"unknown operator {self.op!r}")


def _lower(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list | tuple):
        return [_lower(v) for v in value]
    return value


def _canonical(field_name: str, value: Any) -> Any:
    """A rule's value as the lead's attribute is spelled: lower case; countries as codes
    (``"Germany"`` → ``"de"``), languages as ISO 639-1 (``"de-AT"`` → ``"de"``)."""
    canonical = _CANONICAL.get(field_name)
    if canonical is None:
        return _lower(value)
    if isinstance(value, list | tuple):
        return [canonical(v) or _lower(v) for v in value]
    return canonical(value) or _lower(value)


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
    """A rep with skills ``{"regions": ["emea"], "languages": ["de"]}`` takes only EMEA,
    German-speaking leads; a skill list that is empty or missing takes anything, and so
    does a lead that does not say (no country known: any region)."""
    for skill, attribute in SKILL_FIELDS.items():
        allowed = skills.get(skill)
        if not allowed:
            continue
        wanted = lead.get(attribute)
        if wanted is not None and str(wanted).lower() not in _canonical(attribute, allowed):
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
    reps: Sequence[RepState] | Mapping[uuid.UUID, RepState],
    pools: list[Pool],
    rules: list[Rule],
    accounts: dict[str, uuid.UUID],
    now: datetime,
    exclude: frozenset[uuid.UUID] = frozenset(),
) -> Decision | None:
    """The routing decision for ``lead`` at ``now``, or None when nobody can take it
    (``reps``: a list, or a mapping by rep id)."""
    by_id = reps if isinstance(reps, Mapping) else {r.rep_id: r for r in reps}
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
    if (rule := first_rule(lead, rules, pools_by_id)) is not None:
        return _in_pool(
            pools_by_id[rule.pool_id], by_id, lead, now, exclude, f"rule {rule.rule_id}"
        )
    default = Pool(uuid.UUID(int=0), DEFAULT_POOL, Strategy.ROUND_ROBIN, tuple(by_id))
    return _in_pool(default, by_id, lead, now, exclude, "no rule matched")


def first_rule(lead: LeadFacts, rules: list[Rule], pools: Container[uuid.UUID]) -> Rule | None:
    """The first rule whose conditions all match ``lead`` and whose pool exists."""
    return next((r for r in rules if r.matches(lead) and r.pool_id in pools), None)


def pools_considered(
    lead: LeadFacts, pools: list[Pool], rules: list[Rule]
) -> tuple[set[uuid.UUID], Rule | None]:
    """The pools :func:`decide` may choose ``lead``'s rep from (its account's owner
    aside): the express pools for an express lead, and the first matching rule's pool;
    and that rule (None: no rule matches, so the default pool, every rep). Deciding with
    ``rules=[that rule]`` (or none) decides as with every rule."""
    considered = {p.pool_id for p in pools if p.express and lead.express}
    rule = first_rule(lead, rules, {p.pool_id for p in pools})
    return considered | ({rule.pool_id} if rule else set()), rule


def decide_in_pool(
    lead: LeadFacts,
    reps: Mapping[uuid.UUID, RepState],
    pool: Pool,
    now: datetime,
    exclude: frozenset[uuid.UUID] = frozenset(),
    why: str = "pool",
) -> Decision | None:
    """The pool's choice among its eligible members (the SDR pool of an MQL's nurture
    track), or None when none of them can take the lead now."""
    return _in_pool(pool, reps, lead, now, exclude, why)


def _in_pool(
    pool: Pool,
    reps: Mapping[uuid.UUID, RepState],
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


def lead_facts(transition: Any) -> LeadFacts:
    """What routing knows about the lead behind a transition: its numbers, and what its
    traits and email say about territory and segment (see ``territory``)."""
    traits: dict[str, Any] = dict(getattr(transition, "traits", None) or {})
    email = getattr(transition, "email", None) or traits.get("email")
    if not isinstance(email, str) and "@" in transition.lead_id:
        email = transition.lead_id
    if not isinstance(email, str):
        email = None
    attributes: dict[str, Any] = {
        "score": transition.score,
        "fit": transition.fit,
        "engagement": transition.engagement,
        "stage": str(transition.to_stage),
        "trigger_event": transition.trigger_event,
        **territory(traits, email),
    }
    return LeadFacts(
        lead_id=transition.lead_id,
        express=bool(transition.express),
        domain=account_of(traits, email),
        attributes=attributes,
        traits=traits,
    )
