"""When an SQL lead's recycle timer fires, if nothing else happens. Pure.

The earlier of ``cold_days`` after its last engagement and the closed-form time its
decaying score falls below the recycle level (:func:`baton_scorer.decay.sum_falls_below_at`).
:func:`due_floor` is the cheap lower bound kept in ``LeadState.due``.
"""

from __future__ import annotations

import math

from baton_scorer.decay import Engagement, sum_falls_below_at
from baton_scorer.rules import Rules
from baton_scorer.state import LeadState
from baton_shared.schemas import Stage


def _pairs(state: LeadState, rules: Rules) -> list[tuple[Engagement, float]]:
    hl = rules.compiled.group_half_life
    h0 = rules.half_life_seconds
    return [(Engagement(a, state.origin), hl.get(g, h0)) for g, a in state.groups.items()]


def cold_due(state: LeadState, rules: Rules) -> float | None:
    cold = rules.recycle.cold_days
    since = state.last_engaged_at if state.last_engaged_at is not None else state.stage_at
    if cold is None or since is None:
        return None
    return max(since, state.stage_at or since) + cold * 86_400


def due_at(state: LeadState, rules: Rules) -> float | None:
    """When an SQL lead is recycled if nothing else happens (epoch seconds), or None.

    The earlier of: ``cold_days`` after its last engagement, and the closed-form
    time its score decays below ``recycle.below_score`` (t_ref + h·log2(E/L) per
    half-life group).
    """
    if state.stage != Stage.SQL:
        return None
    times = []
    cold = cold_due(state, rules)
    if cold is not None:
        times.append(cold)
    below = rules.recycle.below_score
    if below is not None and state.origin is not None:
        crossing = sum_falls_below_at(_pairs(state, rules), below - state.fit)
        if crossing is not None:
            times.append(crossing)
    return min(times) if times else None


def due_floor(state: LeadState, rules: Rules, t: float) -> float | None:
    """A lower bound of :func:`due_at`, cheap when every group is positive: a sum of
    decaying parts falls no faster than its fastest-decaying part, so it stays above
    ``level`` until ``t + h_min·log2(S(t)/level)``. Exact otherwise."""
    if state.stage != Stage.SQL:
        return None
    below = rules.recycle.below_score
    cold = cold_due(state, rules)
    if below is None or state.origin is None or not state.groups:
        return cold
    level = below - state.fit
    hl = rules.compiled.group_half_life
    h0 = rules.half_life_seconds
    if level <= 0 or len(state.groups) == 1 or min(state.groups.values()) < 0:
        return due_at(state, rules)
    total = state.engagement_at(t, rules)
    if total <= level:
        return due_at(state, rules)
    h_min = min(hl.get(g, h0) for g in state.groups)
    bound = t + h_min * math.log2(total / level)
    return bound if cold is None else min(cold, bound)
