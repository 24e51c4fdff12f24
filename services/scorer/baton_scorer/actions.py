"""Decisions no event makes: the recycle timer firing, and a rep's action. Pure, in place.

:func:`expire` recycles an SQL lead whose timer is due at a given event time;
:func:`apply_rep_action` applies a rep's confirmation of qualification fields (the gate:
:mod:`baton_scorer.qualification_rules`) or outcome (won, lost, rejected:
:mod:`baton_scorer.outcomes`).
"""

from __future__ import annotations

import math

from baton_scorer.due import cold_due, due_at
from baton_scorer.outcomes import outcome_move
from baton_scorer.rules import Rules
from baton_scorer.state import LeadState
from baton_scorer.transitions import Trigger, missing_bant, move
from baton_shared.schemas import ReasonKind, Stage, Transition


def expire(state: LeadState, lead_id: str, now: float, rules: Rules) -> list[Transition]:
    """Fire the recycle timer if it is due at event time ``now`` (in place); when it is
    not, ``state.due`` becomes the exact due time."""
    due = due_at(state, rules)
    if due is None or due > now:
        state.due = due
        return []
    cold = cold_due(state, rules)
    if cold is not None and math.isclose(due, cold):
        reason = f"no engagement for {rules.recycle.cold_days:g} days"
    else:
        reason = f"score decayed below recycle level {rules.recycle.below_score:g}"
    if state.watermark is None or due > state.watermark:
        state.watermark = due
    trigger = Trigger(f"timer:{due!r}", "recycle timer", due)
    return [move(state, lead_id, Stage.RECYCLED, ReasonKind.RECYCLE, reason, trigger, rules, False)]


def apply_rep_action(
    state: LeadState,
    lead_id: str,
    action_id: str,
    kind: str,
    at: float,
    rules: Rules,
    reason: str | None = None,
    bant: tuple[str, ...] = (),
    disposition: str | None = None,
) -> tuple[LeadState, list[Transition]]:
    """A rep's action (in place).

    ``qualified`` confirms the qualification fields ``bant`` (whatever their framework;
    the lead becomes SQL once every field of the gate's framework is confirmed);
    ``won``, ``lost`` and ``rejected`` move it as the rules' ``outcomes`` say for the
    ``disposition`` code, ``reason`` being the rep's note.
    """
    if action_id in state.seen:
        return state, []
    state.seen[action_id] = None
    trigger = Trigger(action_id, f"rep {kind}", at)
    outcome = outcome_move(rules.outcomes, state.stage, kind, disposition, reason, at)
    if outcome is not None:
        if outcome.hold_until is not None:
            state.hold_until = outcome.hold_until
        return state, [
            move(state, lead_id, outcome.to, outcome.kind, outcome.reason, trigger, rules, False)
        ]
    if kind == "qualified":
        state.bant = tuple(sorted({*state.bant, *bant}))
        if state.stage in (Stage.NEW, Stage.MQL, Stage.RECYCLED) and not missing_bant(state, rules):
            t = max(state.watermark or at, at)
            th = rules.thresholds
            bar = th.sql + (th.hysteresis if state.stage == Stage.RECYCLED else 0)
            if state.sql_ready or state.score_at(t, rules) >= bar:
                why = f"qualified by rep ({', '.join(state.bant)})"
                return state, [
                    move(
                        state,
                        lead_id,
                        Stage.SQL,
                        ReasonKind.QUALIFICATION,
                        why,
                        trigger,
                        rules,
                        False,
                    )
                ]
    return state, []
