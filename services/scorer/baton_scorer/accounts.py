"""Accounts: leads rolled up to their company, and the account's stage. Pure.

A lead's worker tells the account what it knows about the lead
(:func:`member_update`, keyed by account id, after each change of the lead): its
engagement as stored (per half-life group, at the lead's reference time ``origin``),
fit, stage, event-time watermark and what its traits say about the company
(:func:`baton_shared.accounts.company_traits`), numbered by ``seq`` (a newer one wins);
a lead that moves to another account or is merged away sends ``left``.

:func:`apply_updates` keeps each member's latest update in the :class:`AccountState` (the
``accounts`` table's value) and decides the account's stage at its event time (the
latest watermark of its leads): score = fit + engagement, where engagement is the exact
sum of its leads' decayed engagement (:meth:`AccountState.points_at`, the same formula as
a lead's own) and fit comes from the account's traits (``accounts.fit`` in the rules).
Crossing ``accounts.thresholds`` either way emits an :class:`AccountTransition`; a
running estimate (:mod:`baton_scorer.accounts_totals`) spares summing every lead when
no threshold is near.
:func:`account_view` is what ``GET /v1/accounts/{account_id}`` answers.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from baton_scorer.accounts_totals import Totals
from baton_scorer.lookup import BadKey
from baton_scorer.rules import Rules
from baton_scorer.state import LeadState
from baton_shared.accounts import MAX_ACCOUNT_ID_LENGTH, company_traits, normalise_domain
from baton_shared.ids import stable_id
from baton_shared.schemas import AccountLead, AccountStage, AccountTransition

MAX_ACCOUNT_LEADS = 1000  # members kept per account; later newcomers are not counted
CONTRIBUTING_LEADS = 50  # leads named in a transition, most points first


@dataclass(slots=True)
class Member:
    """A lead's latest update, as the account keeps it."""

    seq: int
    stage: str
    fit: float
    groups: dict[str, float]
    origin: float | None
    watermark: float | None
    company: dict[str, Any]
    raw: dict[str, Any] | None = None  # what it was read from: written back as it was

    def engagement_at(self, t: float, rules: Rules) -> float:
        """The lead's engagement decayed to ``t``: the lead's own formula, on its groups."""
        return LeadState.engagement_at(self, t, rules)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        if self.raw is not None:
            return self.raw
        return {
            "seq": self.seq,
            "stage": self.stage,
            "fit": self.fit,
            "groups": self.groups,
            "origin": self.origin,
            "watermark": self.watermark,
            "company": self.company,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Member:
        return cls(
            seq=int(raw["seq"]),
            stage=str(raw["stage"]),
            fit=float(raw["fit"]),
            groups={str(g): float(a) for g, a in raw["groups"].items()},
            origin=None if raw["origin"] is None else float(raw["origin"]),
            watermark=None if raw["watermark"] is None else float(raw["watermark"]),
            company=dict(raw["company"]),
            raw=raw,
        )


@dataclass(slots=True)
class AccountState:
    """What the scorer keeps about one account (``accounts`` table value, JSON)."""

    stage: AccountStage = AccountStage.COLD
    stage_at: float | None = None
    watermark: float | None = None
    members: dict[str, Member] = field(default_factory=dict)
    over_cap: int = 0  # updates of leads not counted (more than MAX_ACCOUNT_LEADS)
    cached_fit: float | None = None  # not stored: recomputed when a company trait changes
    totals: Totals | None = None  # not stored: the running estimate of the engagement

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "stage": self.stage.value,
                "stage_at": self.stage_at,
                "watermark": self.watermark,
                "members": {lead: m.to_dict() for lead, m in self.members.items()},
                "over_cap": self.over_cap,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> AccountState:
        if not raw:
            return cls()
        data = orjson.loads(raw)
        return cls(
            stage=AccountStage(data["stage"]),
            stage_at=data.get("stage_at"),
            watermark=data.get("watermark"),
            members={lead: Member.from_dict(m) for lead, m in data["members"].items()},
            over_cap=int(data.get("over_cap", 0)),
        )

    def engagement_at(self, t: float, rules: Rules) -> float:
        return sum(self.points_at(t, rules).values())

    def points_at(self, t: float, rules: Rules) -> dict[str, float]:
        """Each member's engagement at ``t``: ``Member.engagement_at`` (the lead's own
        formula, the same operations in the same order), with the half-lives looked up
        once for all members."""
        hl = rules.compiled.group_half_life
        h0 = rules.half_life_seconds
        out: dict[str, float] = {}
        for lead_id, m in self.members.items():
            origin = m.origin
            if origin is None:
                out[lead_id] = 0.0
                continue
            out[lead_id] = sum(
                a * 2.0 ** ((origin - t) / hl.get(g, h0)) for g, a in m.groups.items()
            )
        return out

    def adjust(self, old: Member | None, new: Member | None, rules: Rules) -> None:
        """Keep the running totals in step with a member that changed."""
        totals = self.totals
        if totals is None:
            return
        if (
            totals.stale()
            or (old is not None and not totals.add(old, rules, -1.0))
            or (new is not None and not totals.add(new, rules, 1.0))
        ):
            self.totals = None  # rebuilt from the members when next needed

    def crosses(self, score_estimate: float, margin: float, rules: Rules) -> bool:
        """Whether the exact score may be in another stage than the account's."""
        accounts = rules.accounts
        if accounts is None:
            return False
        th = accounts.thresholds
        return stage_for(score_estimate, rules) != self.stage or any(
            abs(score_estimate - x) <= margin for x in (th.engaged, th.sales_ready)
        )

    def traits(self) -> dict[str, Any]:
        """The company's traits: every member's, the most recently active last (wins)."""
        out: dict[str, Any] = {}
        for _, member in sorted(self.members.items(), key=_recency):
            out.update(member.company)
        return out

    def fit(self, rules: Rules) -> float:
        if self.cached_fit is None:
            accounts = rules.accounts
            self.cached_fit = accounts.fit.points(self.traits()) if accounts is not None else 0.0
        return self.cached_fit


def _recency(item: tuple[str, Member]) -> tuple[float, str]:
    lead_id, member = item
    return (member.watermark if member.watermark is not None else float("-inf"), lead_id)


def member_update(lead_id: str, account_id: str, seq: int, state: Any) -> bytes:
    """What a lead's worker sends its account about ``state`` (either core's LeadState):
    a :class:`Member` as ``Member.to_dict`` writes it."""
    member = {
        "seq": seq,
        "stage": str(state.stage),
        "fit": state.fit,
        "groups": state.groups,
        "origin": state.origin,
        "watermark": state.watermark,
        "company": company_traits(state.traits),
    }
    return orjson.dumps({"lead_id": lead_id, "account_id": account_id, "member": member})


def left_update(lead_id: str, account_id: str, seq: int) -> bytes:
    """The lead is no longer in ``account_id`` (it moved, or was merged into another)."""
    return orjson.dumps({"lead_id": lead_id, "account_id": account_id, "left": seq})


Update = tuple[str, str, int, Member | None]
"""A decoded update: (lead id, account id, seq, member — None: it left)."""


def decode_update(value: bytes) -> Update:
    """(lead id, account id, seq, member — None: it left); ValueError when malformed."""
    raw = orjson.loads(value)
    lead_id, account_id = raw.get("lead_id"), raw.get("account_id")
    if not isinstance(lead_id, str) or not isinstance(account_id, str):
        raise ValueError("an account update needs lead_id and account_id")
    if "left" in raw:
        return lead_id, account_id, int(raw["left"]), None
    try:
        member = Member.from_dict(raw["member"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"a malformed account member: {exc!r}") from exc
    return lead_id, account_id, member.seq, member


def stage_for(score: float, rules: Rules) -> AccountStage:
    accounts = rules.accounts
    if accounts is None:
        return AccountStage.COLD
    th = accounts.thresholds
    if score >= th.sales_ready:
        return AccountStage.SALES_READY
    if score >= th.engaged:
        return AccountStage.ENGAGED
    return AccountStage.COLD


def apply_updates(
    account_id: str, state: AccountState, updates: list[bytes], rules: Rules
) -> list[AccountTransition]:
    """Apply ``updates`` (their values, in order) to ``state`` in place; the transitions
    they cause. A malformed update raises ValueError before anything changes."""
    return apply_decoded(account_id, state, [decode_update(v) for v in updates], rules)


def apply_decoded(
    account_id: str, state: AccountState, updates: list[Update], rules: Rules
) -> list[AccountTransition]:
    """:func:`apply_updates` of updates :func:`decode_update` read."""
    out: list[AccountTransition] = []
    for lead_id, _, seq, member in updates:
        current = state.members.get(lead_id)
        if current is not None and current.seq > seq:
            continue  # an older update of this lead: the newer one stands
        if member is None:
            if state.members.pop(lead_id, None) is not None:
                state.cached_fit = None
                state.adjust(current, None, rules)
        elif current is None and len(state.members) >= MAX_ACCOUNT_LEADS:
            state.over_cap += 1
            continue
        else:
            state.members[lead_id] = member
            state.adjust(current, member, rules)
            if current is None or current.company != member.company:
                state.cached_fit = None
            if member.watermark is not None and (
                state.watermark is None or member.watermark > state.watermark
            ):
                state.watermark = member.watermark
        moved = decide(account_id, state, rules, lead_id, seq)
        if moved is not None:
            out.append(moved)
    return out


def decide(
    account_id: str, state: AccountState, rules: Rules, trigger: str, seq: int
) -> AccountTransition | None:
    """The account's move at its event time after ``trigger``'s update ``seq``, if any."""
    at = state.watermark
    if at is None or rules.accounts is None:
        return None
    fit = state.fit(rules)
    totals = state.totals
    if totals is None:
        totals = state.totals = Totals.build(state.members.values(), at, rules)
    if totals is not None:
        estimate, margin = totals.estimate(at)
        if not state.crosses(fit + estimate, margin, rules):
            return None  # the exact score is in the account's stage: no need to sum it
    points = state.points_at(at, rules)
    engagement = sum(points.values())
    score = fit + engagement
    to = stage_for(score, rules)
    if to == state.stage:
        return None
    before, state.stage, state.stage_at = state.stage, to, at
    leads = sorted(((p, lead) for lead, p in points.items() if round(p, 3) > 0), reverse=True)
    return AccountTransition(
        transition_id=stable_id(account_id, to.value, trigger, str(seq)),
        account_id=account_id,
        from_stage=before,
        to_stage=to,
        score=round(score, 6),
        fit=round(fit, 6),
        engagement=round(engagement, 6),
        leads=[
            AccountLead(lead_id=lead, points=round(p, 3)) for p, lead in leads[:CONTRIBUTING_LEADS]
        ],
        trigger_lead_id=trigger,
        occurred_at=datetime.fromtimestamp(at, UTC),
        rules_version=rules.version,
    )


# -- GET /v1/accounts/{account_id} ------------------------------------------------------


class AccountLeadView(BaseModel):
    """One lead of an account, as the account last heard of it."""

    model_config = ConfigDict(frozen=True)

    lead_id: str
    stage: str = Field(description="The lead's stage (new, mql, sql, recycled, disqualified)")
    points: float = Field(description="The lead's engagement, decayed to as_of")


class AccountView(BaseModel):
    """One account as the scorer knows it now."""

    model_config = ConfigDict(frozen=True)

    account_id: str = Field(description="The company's domain, else its group id")
    stage: AccountStage = Field(description="cold, engaged or sales_ready")
    stage_since: datetime | None = Field(description="Event time of the move to this stage")
    score: float = Field(description="fit + engagement, now")
    fit: float = Field(description="Points for the company, from the account's traits")
    engagement: float = Field(description="The sum of its leads' engagement, decayed to now")
    leads: list[AccountLeadView] = Field(description="Its leads, most points first")
    traits: dict[str, Any] = Field(description="What its leads' traits say about the company")
    rules_version: str = Field(description="The rules the numbers were computed with")
    last_event_at: datetime | None = Field(description="The latest event time of its leads")
    as_of: datetime = Field(description="The time the numbers are decayed to")


def account_keys(raw: str) -> list[str]:
    """The account ids ``raw`` may name: as given, then as a normalised domain
    (``https://www.Acme.com`` finds ``acme.com``). BadKey when no account can have it."""
    if not raw.strip():
        raise BadKey("missing", "the account id is empty: give a company domain or group id")
    if len(raw) > MAX_ACCOUNT_ID_LENGTH:
        raise BadKey(
            "string_too_long", f"the account id is longer than {MAX_ACCOUNT_ID_LENGTH} characters"
        )
    if any(unicodedata.category(c) == "Cc" for c in raw):
        raise BadKey("control_character", "the account id contains a control character")
    domain = normalise_domain(raw)
    return [raw] if not domain or domain == raw else [raw, domain]


def account_view(account_id: str, state: AccountState, rules: Rules, now: float) -> AccountView:
    """The account whose state the ``accounts`` table holds, at ``now``."""
    points = sorted(
        ((m.engagement_at(now, rules), lead, m.stage) for lead, m in state.members.items()),
        key=lambda p: (-p[0], p[1]),
    )
    fit = state.fit(rules)
    engagement = sum(p for p, _, _ in points)
    return AccountView(
        account_id=account_id,
        stage=state.stage,
        stage_since=_at(state.stage_at),
        score=round(fit + engagement, 6),
        fit=round(fit, 6),
        engagement=round(engagement, 6),
        leads=[
            AccountLeadView(lead_id=lead, stage=stage, points=round(p, 3))
            for p, lead, stage in points
        ],
        traits=state.traits(),
        rules_version=rules.version,
        last_event_at=_at(state.watermark),
        as_of=datetime.fromtimestamp(now, UTC),
    )


def _at(epoch_seconds: float | None) -> datetime | None:
    return None if epoch_seconds is None else datetime.fromtimestamp(epoch_seconds, UTC)
