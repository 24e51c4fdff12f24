"""Moving a lead to a stage, and the Transition that records the move. Pure.

:func:`decide` is the stage an event's score (or express lane) earns; :func:`move`
changes the state's stage and builds the :class:`Transition` with its deterministic
id ``stable_id(lead, stage, trigger)``, the score breakdown and the top signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from baton_scorer.due import due_floor
from baton_scorer.rules import Rules
from baton_scorer.state import LeadState
from baton_shared.ids import stable_id
from baton_shared.schemas import ReasonKind, Signal, Stage, Transition, trusted_constructor

TOP_SIGNALS = 3


@dataclass(frozen=True)
class Trigger:
    """What caused a decision: an event, a timer or a rep action."""

    id: str
    name: str | None
    at: float


def decide(
    state: LeadState,
    lead_id: str,
    trigger: Trigger,
    lane: str | None,
    rules: Rules,
    score: float,
) -> list[Transition]:
    """The stage an event moves the lead to, given its ``score`` at the watermark."""
    stage = state.stage
    if stage in (Stage.DISQUALIFIED, Stage.SQL, Stage.CUSTOMER):
        return []
    hold = state.hold_until
    if hold is not None and lane is None and trigger.at < hold:
        return []  # nurtured for a while after a rep's outcome: only an express lane moves it
    th = rules.thresholds
    sql_bar = th.sql + (th.hysteresis if stage == Stage.RECYCLED else 0)
    out: list[Transition] = []
    if lane is not None or score >= sql_bar:
        if lane is not None:
            kind, reason = ReasonKind.EXPRESS_LANE, f"express lane: {lane}"
        else:
            kind, reason = (
                ReasonKind.THRESHOLD,
                f"score {score:.1f} reached SQL threshold {sql_bar:g}",
            )
        missing = missing_bant(state, rules)
        if not missing:
            out.append(
                move(state, lead_id, Stage.SQL, kind, reason, trigger, rules, lane is not None)
            )
            return out
        state.sql_ready = True
        if stage == Stage.NEW:
            reason += f"; SQL awaits qualification ({', '.join(missing)})"
            out.append(move(state, lead_id, Stage.MQL, kind, reason, trigger, rules, False))
        return out
    if stage == Stage.NEW and score >= th.mql:
        reason = f"score {score:.1f} reached MQL threshold {th.mql:g}"
        out.append(
            move(state, lead_id, Stage.MQL, ReasonKind.THRESHOLD, reason, trigger, rules, False)
        )
    return out


def missing_bant(state: LeadState, rules: Rules) -> list[str]:
    """The fields of the gate's framework no rep has confirmed yet (``state.bant`` holds
    every confirmed field, whatever its framework)."""
    gate = rules.qualification
    if not gate.required:
        return []
    return [f for f in gate.gate_fields if f not in state.bant]


build_transition = trusted_constructor(Transition)
build_signal = trusted_constructor(Signal)


def move(
    state: LeadState,
    lead_id: str,
    to: Stage,
    kind: ReasonKind | None,
    reason: str,
    trigger: Trigger,
    rules: Rules,
    express: bool,
) -> Transition:
    t = state.watermark if state.watermark is not None else trigger.at
    t = max(t, trigger.at)
    engagement = state.engagement_at(t, rules)
    # Every field is built here with its exact type: validating again cost more than
    # the rest of scoring an event (tests/scorer checks the output validates).
    transition = build_transition(
        transition_id=stable_id(lead_id, to.value, trigger.id),
        lead_id=lead_id,
        from_stage=state.stage,
        to_stage=to,
        score=round(state.fit + engagement, 6),
        fit=round(state.fit, 6),
        engagement=round(engagement, 6),
        reason=reason,
        reason_kind=kind,
        express=express,
        trigger_event_id=trigger.id,
        trigger_event=trigger.name,
        occurred_at=datetime.fromtimestamp(trigger.at, UTC),
        rules_version=rules.version,
        top_signals=top_signals(state, t, rules),
        email=state.email,
        traits=state.traits,  # replaced (never mutated) when traits change, so not copied
    )
    state.stage = to
    state.stage_at = trigger.at
    state.due = due_floor(state, rules, t)
    if to != Stage.MQL:
        state.sql_ready = False
    return transition


def top_signals(state: LeadState, t: float, rules: Rules, n: int = TOP_SIGNALS) -> list[Signal]:
    """The signals contributing most to the engagement at ``t``."""
    origin = state.origin
    if origin is None:
        return []
    hl = rules.compiled.signal_half_life
    h0 = rules.half_life_seconds
    values = [
        (a * 2.0 ** ((origin - t) / hl.get(label, h0)), label)
        for label, a in state.signals.items()
        if a > 0
    ]
    values.sort(reverse=True)
    return [build_signal(signal=label, points=round(v, 3)) for v, label in values[:n]]
