"""A lead's stage, moved by events in event time. Pure: plain data in, plain data out.

``apply_event(state, event, rules)`` returns the new state and the transition
it caused, if any. A lead moves forward only (new → mql → sql) here; recycling
and disqualification come with the full rules engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from baton_scorer.decay import Engagement
from baton_scorer.points import engagement_points, fit_points, is_express
from baton_scorer.rules import Rules
from baton_shared.ids import stable_id
from baton_shared.schemas import LeadEvent, Stage, Transition

STAGE_ORDER = {Stage.NEW: 0, Stage.RECYCLED: 0, Stage.MQL: 1, Stage.SQL: 2}
DEDUP_WINDOW = 500


@dataclass(frozen=True)
class LeadState:
    """What the scorer remembers about one lead."""

    stage: Stage = Stage.NEW
    fit: float = 0.0
    engagement: Engagement = field(default_factory=Engagement)
    traits: dict[str, Any] = field(default_factory=dict)
    email: str | None = None
    recent_event_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage.value,
            "fit": self.fit,
            "engagement": [self.engagement.value, self.engagement.ref_at],
            "traits": self.traits,
            "email": self.email,
            "recent_event_ids": list(self.recent_event_ids),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LeadState:
        value, ref_at = raw["engagement"]
        return cls(
            stage=Stage(raw["stage"]),
            fit=raw["fit"],
            engagement=Engagement(value, ref_at),
            traits=raw["traits"],
            email=raw["email"],
            recent_event_ids=tuple(raw["recent_event_ids"]),
        )


def apply_event(
    state: LeadState, event: LeadEvent, rules: Rules
) -> tuple[LeadState, Transition | None]:
    """Score ``event`` into ``state`` and decide, at the event's time, whether the stage moves."""
    if event.event_id in state.recent_event_ids:
        return state, None
    seen = (*state.recent_event_ids, event.event_id)[-DEDUP_WINDOW:]
    traits = {**state.traits, **event.traits}
    email = event.email or state.email
    at = event.occurred_at.timestamp()
    engagement = state.engagement.add(engagement_points(event, rules), at, rules.half_life_seconds)
    new = replace(
        state,
        fit=fit_points(traits, email, rules),
        engagement=engagement,
        traits=traits,
        email=email,
        recent_event_ids=seen,
    )
    eng_now = engagement.at(at, rules.half_life_seconds)
    score = new.fit + eng_now
    target, reason, express = _target_stage(new.stage, score, event, rules)
    if target is None:
        return new, None
    transition = Transition(
        transition_id=stable_id(event.lead_id, target.value, event.event_id),
        lead_id=event.lead_id,
        from_stage=state.stage,
        to_stage=target,
        score=round(score, 6),
        fit=round(new.fit, 6),
        engagement=round(eng_now, 6),
        reason=reason,
        express=express,
        trigger_event_id=event.event_id,
        trigger_event=event.name,
        occurred_at=event.occurred_at,
        rules_version=rules.version,
    )
    return replace(new, stage=target), transition


def _target_stage(
    stage: Stage, score: float, event: LeadEvent, rules: Rules
) -> tuple[Stage | None, str, bool]:
    rank = STAGE_ORDER.get(stage, 0)
    if stage == Stage.DISQUALIFIED:
        return None, "", False
    if rank < STAGE_ORDER[Stage.SQL] and is_express(event, rules):
        return Stage.SQL, f"express lane: {event.name}", True
    if rank < STAGE_ORDER[Stage.SQL] and score >= rules.thresholds.sql:
        return Stage.SQL, f"score {score:.1f} reached SQL threshold {rules.thresholds.sql:g}", False
    if rank < STAGE_ORDER[Stage.MQL] and score >= rules.thresholds.mql:
        return Stage.MQL, f"score {score:.1f} reached MQL threshold {rules.thresholds.mql:g}", False
    return None, "", False
