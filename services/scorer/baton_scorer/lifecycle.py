"""A lead's stage, moved by events in event time: the reference scoring core. Pure.

:func:`score_event` dedups an event, updates traits and fit, credits engagement (caps,
first-time-only, per-group decay), then decides the stage at the lead's event-time
watermark (the latest event time seen; a late event is never scored "in the past").
It first fires a cold timer that an event newer than it proves has passed, so replay
and the live stream agree. The hot path updates the state it is given in place;
:func:`apply_event` is the copying, functional form.

The rest of the core lives by responsibility: the state (:mod:`baton_scorer.state`),
when the recycle timer fires (:mod:`baton_scorer.due`), stage moves and transitions
(:mod:`baton_scorer.transitions`), the timer and rep actions (:mod:`baton_scorer.actions`).
Stages: new → mql → sql; sql → recycled (nurture) when cold, decayed, rejected or lost;
any → customer on a win;
recycled → sql again at ``sql + hysteresis``; any but a customer → disqualified on a
competitor's domain.
"""

from __future__ import annotations

import math

from baton_scorer.actions import apply_rep_action, expire
from baton_scorer.bounds import merge_traits
from baton_scorer.due import due_at
from baton_scorer.points import fit_points, is_competitor
from baton_scorer.rules import CompiledRule, Rules
from baton_scorer.state import LeadState
from baton_scorer.transitions import Trigger, decide, move, top_signals
from baton_shared.schemas import LeadEvent, ReasonKind, Stage, Transition

__all__ = [
    "DEDUP_WINDOW",
    "LeadState",
    "apply_event",
    "apply_rep_action",
    "due_at",
    "expire",
    "fit_points",
    "score_event",
    "top_signals",
]

DEDUP_WINDOW = 500
CAP_HORIZON_SECONDS = 90 * 86_400  # capped windows older than this behind the watermark are dropped


def apply_event(
    state: LeadState, event: LeadEvent, rules: Rules
) -> tuple[LeadState, Transition | None]:
    """Functional form for one event: a new state and the last transition it caused."""
    new, transitions = score_event(state.clone(), event, rules)
    return new, (transitions[-1] if transitions else None)


def score_event(
    state: LeadState, event: LeadEvent, rules: Rules, at: float | None = None
) -> tuple[LeadState, list[Transition]]:
    """Score ``event`` into ``state`` (in place) and return the transitions it causes.

    ``at`` is the event time in epoch seconds, when the caller has it already. A
    duplicate ``event_id`` (within the dedup window) changes nothing.
    """
    if at is None:
        at = event.occurred_at.timestamp()
    seen = state.seen
    event_id = event.event_id
    if event_id in seen:
        return state, []
    seen[event_id] = None
    if len(seen) > DEDUP_WINDOW:
        del seen[next(iter(seen))]
    out: list[Transition] = []
    due = state.due
    if due is not None and at > due:
        # ``due`` is a lower bound (positive points only push it later): fire if really due.
        out += expire(state, event.lead_id, at, rules)
    watermark = state.watermark
    if watermark is None or at > watermark:
        state.watermark = at

    lowered_due = False
    if event.traits or (event.email and event.email != state.email):
        if event.traits:
            state.traits = merge_traits(state.traits, event.traits)
        state.email = event.email or state.email
        fit = fit_points(state.traits, state.email, rules)
        lowered_due = fit < state.fit
        state.fit = fit

    compiled = rules.compiled
    plan = compiled.plans.get((event.type, event.name, event.page_category))
    if plan is None:
        plan = compiled.plan(event)
    matched = plan.static
    if plan.dynamic:
        matched = (*matched, *(r for r in plan.dynamic if r.match and r.match.matches(event)))
    if matched:
        origin = state.origin
        if origin is None:
            origin = state.origin = at
        elif at - origin > compiled.rebase_after:
            origin = _rebase(state, at, rules)
        groups = state.groups
        signals = state.signals
        for rule in matched:
            points = rule.points
            if points > 0:
                last = state.last_engaged_at
                if last is None or at > last:
                    state.last_engaged_at = at  # capped or not, a positive action is engagement
            elif points < 0:
                lowered_due = True
            if rule.cap_points is None:
                credit = points * 2.0 ** ((at - origin) / rule.half_life)
                groups[rule.group] = groups.get(rule.group, 0.0) + credit
                signals[rule.label] = signals.get(rule.label, 0.0) + credit
            else:
                _add_capped(state, rule, event_id, at)

    if (
        compiled.competitors
        and state.stage not in (Stage.DISQUALIFIED, Stage.CUSTOMER)
        and is_competitor(state.email, rules)
    ):
        out.append(
            move(
                state,
                event.lead_id,
                Stage.DISQUALIFIED,
                ReasonKind.DISQUALIFIED,
                "competitor email domain",
                Trigger(event_id, event.name, at),
                rules,
                False,
            )
        )
        return state, out
    stage = state.stage
    if stage is not Stage.SQL and stage is not Stage.DISQUALIFIED:
        lane = plan.express
        if lane is None and plan.express_matches:
            if any(m.matches(event) for m in plan.express_matches):
                lane = plan.express_label
        # The score at the watermark, inlined: this runs for almost every event.
        score = state.fit
        origin = state.origin
        if origin is not None:
            t = state.watermark
            hl = compiled.group_half_life
            h0 = compiled.half_life
            for g, a in state.groups.items():
                score += a * 2.0 ** ((origin - t) / hl.get(g, h0))  # type: ignore[operator]
        # The bar that could move the lead: MQL from new, SQL (+ hysteresis) otherwise.
        if stage is Stage.NEW:
            bar = compiled.mql
        elif stage is Stage.RECYCLED:
            bar = compiled.sql + compiled.hysteresis
        else:
            bar = compiled.sql
        if lane is not None or score >= bar:
            trigger = Trigger(event_id, event.name, at)
            out += decide(state, event.lead_id, trigger, lane, rules, score)
    if state.stage is Stage.SQL and (state.due is None or lowered_due):
        state.due = due_at(state, rules)
    return state, out


def _rebase(state: LeadState, to: float, rules: Rules) -> float:
    """Move the reference time forward to ``to``, rescaling every stored value."""
    origin = state.origin
    assert origin is not None
    compiled = rules.compiled
    h0 = rules.half_life_seconds
    hl = compiled.group_half_life
    known = compiled.rules
    state.groups = {g: a * 2.0 ** ((origin - to) / hl.get(g, h0)) for g, a in state.groups.items()}
    state.signals = {
        label: a * 2.0 ** ((origin - to) / (known[label].half_life if label in known else h0))
        for label, a in state.signals.items()
    }
    state.origin = to
    return to


def _add_capped(state: LeadState, rule: CompiledRule, event_id: str, at: float) -> None:
    # Within a window the earliest events (event time, then id) count, up to the cap.
    # Recomputing the window and crediting only the differences keeps the result
    # independent of arrival order, and linearity keeps it exact.
    windows = state.capped.setdefault(rule.label, {})
    key = "all" if rule.window_s is None else str(math.floor(at / rule.window_s))
    entries = windows.setdefault(key, [])
    entries.append([at, event_id, 0.0])
    entries.sort(key=lambda e: (e[0], e[1]))
    remaining = rule.cap_points or 0.0
    kept = []
    for entry in entries:
        counted = min(rule.points, remaining)
        remaining -= counted
        if counted != entry[2]:
            _credit(state, rule, counted - entry[2], entry[0])
            entry[2] = counted
        if counted > 0:
            kept.append(entry)
    windows[key] = kept
    if rule.window_s is not None and state.watermark is not None:
        oldest = math.floor((state.watermark - CAP_HORIZON_SECONDS) / rule.window_s)
        # "all" is a first-time-only rule's key: this rule was one under earlier rules.
        for old in [k for k in windows if k != "all" and int(k) < oldest]:
            del windows[old]


def _credit(state: LeadState, rule: CompiledRule, points: float, at: float) -> None:
    origin = state.origin
    if origin is None:
        origin = state.origin = at
    credit = points * 2.0 ** ((at - origin) / rule.half_life)
    state.groups[rule.group] = state.groups.get(rule.group, 0.0) + credit
    state.signals[rule.label] = state.signals.get(rule.label, 0.0) + credit
