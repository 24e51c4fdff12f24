"""What the scorer answers about one lead: its stored state, as of now. Pure.

``GET /v1/leads/{key}`` (:mod:`baton_scorer.web`) checks the ``key`` the caller gave
(:func:`checked_key`), tries the lead ids it may name (:func:`lead_ids_for`), then the
anonymous id, follows a lead merged away to its survivor (:func:`merged_into`), and
answers :func:`lead_view` of the lead it finds: its stage, and its
score, fit, engagement and each signal's points decayed to ``now`` by the scoring core
the stream runs (:mod:`baton_scorer.core`, either core), with the rules version and the
events it remembers.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from baton_scorer import core
from baton_scorer.decay import Engagement
from baton_scorer.rules import Rules
from baton_shared.accounts import account_of
from baton_shared.schemas import Signal

MAX_KEY_LENGTH = 320  # the longest email address; user and anonymous ids are at most 256
RECENT_EVENTS = 10

MatchedBy = Literal["lead_id", "email", "anonymous_id"]


class BadKey(ValueError):
    """A key no lead can have: ``rule`` names the rule it breaks."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


class LeadView(BaseModel):
    """One lead as the scorer knows it now."""

    model_config = ConfigDict(frozen=True)

    lead_id: str = Field(description="The lead's id: its userId, else its email")
    matched_by: MatchedBy = Field(
        description="How the key named the lead: its id, its email (trimmed, lower case) "
        "or an anonymous id an identify stitched to it"
    )
    stage: str = Field(description="new, mql, sql, recycled or disqualified")
    stage_since: datetime | None = Field(description="Event time of the move to this stage")
    score: float = Field(description="fit + engagement, now")
    fit: float = Field(description="Points for who the lead is (does not decay)")
    engagement: float = Field(description="Engagement points decayed to now")
    signals: list[Signal] = Field(
        description="Each signal's engagement points now, largest first (negative ones last)"
    )
    email: str | None = Field(description="The email the lead's events carried, if any")
    merged_ids: list[str] = Field(
        description="Ids of other leads merged into this one (an alias's previous id, an "
        "email an identify carried); any of them finds this lead"
    )
    account: str | None = Field(
        description="The lead's account: its company's domain, else its group id, else its "
        "work email's domain (null: none known); GET /v1/accounts/{account_id} shows it"
    )
    rules_version: str = Field(description="The rules the numbers were computed with")
    last_event_at: datetime | None = Field(description="The latest event time scored")
    last_engaged_at: datetime | None = Field(description="The latest positive engagement")
    recent_event_ids: list[str] = Field(
        description=f"The last {RECENT_EVENTS} event ids scored, most recent first"
    )
    as_of: datetime = Field(description="The time the numbers are decayed to")


def checked_key(raw: str) -> str:
    """``raw`` when some lead could be known by it; :class:`BadKey` otherwise."""
    if not raw.strip():
        raise BadKey("missing", "the key is empty: give a userId, an email or an anonymousId")
    if len(raw) > MAX_KEY_LENGTH:
        raise BadKey("string_too_long", f"the key is longer than {MAX_KEY_LENGTH} characters")
    if any(unicodedata.category(c) == "Cc" for c in raw):
        raise BadKey("control_character", "the key contains a control character (NUL, ...)")
    return raw


def lead_ids_for(key: str) -> list[tuple[str, MatchedBy]]:
    """The lead ids ``key`` may be, in order: as given (a userId, or the address of a lead
    known only by email), then an email as ingest keys it (trimmed, lower case)."""
    out: list[tuple[str, MatchedBy]] = [(key, "lead_id")]
    if "@" in key:
        email = key.strip().lower()
        if email != key:
            out.append((email, "email"))
    return out


def signals_at(record: dict[str, Any], t: float, rules: Rules) -> list[Signal]:
    """Every signal of a stored state (``to_dict``) with its points at ``t``."""
    origin = record.get("origin")
    if origin is None:
        return []
    half_life = rules.compiled.signal_half_life
    h0 = rules.half_life_seconds
    points = [
        (Engagement(value, origin).at(t, half_life.get(label, h0)), label)
        for label, value in record.get("signals", {}).items()
    ]
    points.sort(reverse=True)
    return [Signal(signal=label, points=round(p, 3)) for p, label in points if round(p, 3)]


MAX_MERGE_HOPS = 16  # merged-away ids followed to the survivor before giving up


def merged_into(stored: dict[str, Any]) -> str | None:
    """The lead a stored lead was merged into, if it was."""
    into = (stored.get("identity") or {}).get("merged_into")
    return into if isinstance(into, str) else None


def lead_view(
    lead_id: str, stored: dict[str, Any], rules: Rules, now: float, matched_by: MatchedBy
) -> LeadView:
    """The lead whose state the ``leads`` table holds as ``stored``, at ``now``."""
    state = core.state_from_dict(stored, rules)
    record = state.to_dict()
    recent = record["recent_event_ids"][-RECENT_EVENTS:]
    return LeadView(
        lead_id=lead_id,
        matched_by=matched_by,
        stage=record["stage"],
        stage_since=_at(record.get("stage_at")),
        score=round(core.score_at(state, now, rules), 6),
        fit=round(record["fit"], 6),
        engagement=round(core.engagement_at(state, now, rules), 6),
        signals=signals_at(record, now, rules),
        email=record.get("email"),
        merged_ids=list((stored.get("identity") or {}).get("merged_ids", ())),
        account=account_of(record["traits"], record.get("email")),
        rules_version=rules.version,
        last_event_at=_at(record.get("watermark")),
        last_engaged_at=_at(record.get("last_engaged_at")),
        recent_event_ids=recent[::-1],
        as_of=datetime.fromtimestamp(now, UTC),
    )


def _at(epoch_seconds: float | None) -> datetime | None:
    return None if epoch_seconds is None else datetime.fromtimestamp(epoch_seconds, UTC)
