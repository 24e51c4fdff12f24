"""The scoring core the worker and ``baton replay`` run.

``baton_scorer.lifecycle`` is the reference: readable Python, and what the property
tests prove things about. ``baton_scorer_native`` (``services/scorer-native``, Rust)
computes the same results — the same floating-point operations in the same order, the
same ids, reasons and rounding — several times faster; ``tests/scorer/test_native_core.py``
checks the two agree on every transition and every state. The compiled core is used
when it is installed, unless ``BATON_SCORER_CORE=python``; ``BATON_SCORER_CORE=native``
refuses to start without it.

Both keep the lead's state as ``LeadState`` objects with the same ``to_dict``, so a
state one wrote the other reads (the changelog does not care which core runs).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pydantic_core

from baton_scorer import bounds, lifecycle
from baton_scorer.outcomes import outcome_move
from baton_scorer.rules import Rules
from baton_scorer.state import engagement_from_dict
from baton_shared.schemas import EventType, LeadEvent, ReasonKind, Signal, Stage, Transition

try:
    import baton_scorer_native as _native
except ImportError:  # not built here: the reference core
    _native = None


def _choose() -> str:
    wanted = os.environ.get("BATON_SCORER_CORE", "auto")
    if wanted not in ("auto", "native", "python"):
        raise ValueError(f"BATON_SCORER_CORE must be auto, native or python, got {wanted!r}")
    if wanted == "python":
        return "python"
    if _native is None:
        if wanted == "native":
            raise RuntimeError("BATON_SCORER_CORE=native but baton_scorer_native is not installed")
        return "python"
    return "native"


KIND = _choose()
"""``native`` or ``python``: the core this process runs."""


# -- the native core's Python side ------------------------------------------------------

# A replay builds tens of thousands of transitions: the native core builds them without
# pydantic's per-call machinery (``object.__new__`` and the instance slots set directly,
# as ``transitions.build_transition`` gets them from ``schemas.trusted_constructor``), from
# these. ``tests/scorer/test_native_core.py`` checks they equal what ``build_transition``
# builds, field order and fields set included; a schema change that adds, drops or
# reorders a field stops the import here instead.
_TRANSITION_FIELDS = (
    "schema_", "transition_id", "lead_id", "from_stage", "to_stage", "score", "fit",
    "engagement", "reason", "express", "trigger_event_id", "trigger_event", "occurred_at",
    "rules_version", "reason_kind", "top_signals", "emitted_at", "email", "traits", "sealed",
)  # fmt: skip
if tuple(Transition.model_fields) != _TRANSITION_FIELDS or tuple(Signal.model_fields) != (
    "signal",
    "points",
):
    raise RuntimeError("Transition or Signal changed: update the native core's TransitionMaker")
_TRANSITION_MAKER = {
    "fields": list(_TRANSITION_FIELDS),
    "new": object.__new__,
    "transition": Transition,
    "signal": Signal,
    "stages": {s.value: s for s in Stage},
    "kinds": {k.value: k for k in ReasonKind},
    "schema": Transition.model_fields["schema_"].default,
    "given": frozenset(_TRANSITION_FIELDS) - {"schema_", "emitted_at", "sealed"},
    "signal_given": frozenset(("signal", "points")),
    "fromtimestamp": datetime.fromtimestamp,
    "utc": UTC,
}


_MERGING_TYPES = (EventType.ALIAS, EventType.IDENTIFY)  # handoff.MERGING_TYPES


def lead_index() -> Any:
    """The compiled core's lead id -> state index over one ``states`` dict, for
    ``score_records`` (one per dict: states are only ever added to it)."""
    if _native is None:
        raise RuntimeError("baton_scorer_native is not installed")
    return _native.LeadIndex()


def native_core(rules: Rules) -> Any:
    """The compiled core for ``rules`` (built once per rules object, kept on it)."""
    core = rules.__dict__.get("_native_core")
    if core is None:
        if _native is None:
            raise RuntimeError("baton_scorer_native is not installed")
        compiled = rules.compiled
        th, recycle = rules.thresholds, rules.recycle
        spec = {
            "rules": [
                (r.label, r.points, r.group, r.half_life, r.cap_points, r.window_s)
                for r in compiled.rules.values()
            ],
            "group_half_life": dict(compiled.group_half_life),
            "h0": compiled.half_life,
            "mql": compiled.mql,
            "sql": compiled.sql,
            "hysteresis": compiled.hysteresis,
            "rebase_after": compiled.rebase_after,
            "competitors": set(compiled.competitors),
            "qualification_required": rules.qualification.required,
            "bant": list(rules.qualification.gate_fields),  # the gate's framework's fields
            "cold_days": recycle.cold_days,
            "below": recycle.below_score,
            "version": rules.version,
            # The reasons' numbers, formatted by Python exactly as lifecycle does.
            "sql_bar_g": f"{th.sql + 0:g}",
            "recycled_bar_g": f"{th.sql + th.hysteresis:g}",
            "mql_g": f"{th.mql:g}",
            "cold_g": f"{recycle.cold_days:g}" if recycle.cold_days is not None else "None",
            "below_g": f"{recycle.below_score:g}" if recycle.below_score is not None else "None",
            # For encoded events (score_records): the types it scores (an alias or identify,
            # which may merge two leads, is left to the caller), and JSON objects as
            # pydantic reads a dict[str, Any].
            "event_types": {t.value: t for t in EventType if t not in _MERGING_TYPES},
            "from_json": pydantic_core.from_json,
            "transition_maker": _TRANSITION_MAKER,
            "merge_traits": bounds.merge_traits,
        }
        core = _native.Core(spec, rules, compiled, lifecycle.fit_points)
        rules.__dict__["_native_core"] = core
    return core


def native_rep_action(
    state: Any,
    lead_id: str,
    action_id: str,
    kind: str,
    at: float,
    rules: Rules,
    reason: str | None = None,
    bant: tuple[str, ...] = (),
    disposition: str | None = None,
) -> tuple[Any, list[Transition]]:
    """``lifecycle.apply_rep_action`` on the native core: an outcome's move is decided
    here (:func:`~baton_scorer.outcomes.outcome_move`), the native core applies it."""
    native = native_core(rules)
    outcome = outcome_move(rules.outcomes, Stage(state.stage), kind, disposition, reason, at)
    decided = None
    if outcome is not None:
        decided = (outcome.to.value, outcome.kind.value, outcome.reason, outcome.hold_until)
    out = native.apply_rep_action(state, lead_id, action_id, kind, at, list(bant), decided)
    return state, list(out)


# -- the API both cores share ------------------------------------------------------------

if KIND == "native":
    assert _native is not None
    LeadState: Any = _native.LeadState

    new_state = _native.LeadState

    def scorer(rules: Rules) -> Callable[..., list[Transition]]:
        """``scorer(state, event, at)``: :func:`score_event` for hot loops, bound to
        ``rules`` (no wrapper call per event)."""
        return native_core(rules).score_event  # type: ignore[no-any-return]

    def state_from_dict(raw: dict[str, Any], rules: Rules) -> Any:
        groups, signals, origin = engagement_from_dict(raw, rules)
        return _native.LeadState.from_parts(raw, groups, signals, origin)

    def is_seen(state: Any, event_id: str) -> bool:
        return bool(state.is_seen(event_id))

    def score_event(
        state: Any, event: LeadEvent, rules: Rules, at: float | None = None
    ) -> tuple[Any, list[Transition]]:
        return state, native_core(rules).score_event(state, event, at)

    def expire(state: Any, lead_id: str, now: float, rules: Rules) -> list[Transition]:
        return list(native_core(rules).expire(state, lead_id, now))

    apply_rep_action = native_rep_action

    def score_at(state: Any, t: float, rules: Rules) -> float:
        return float(native_core(rules).score_at(state, t))

    def engagement_at(state: Any, t: float, rules: Rules) -> float:
        return float(native_core(rules).engagement_at(state, t))

else:
    LeadState = lifecycle.LeadState

    new_state = lifecycle.LeadState

    def scorer(rules: Rules) -> Callable[..., list[Transition]]:
        """``scorer(state, event, at)``: :func:`score_event` for hot loops."""
        score = lifecycle.score_event

        def bound(state: Any, event: LeadEvent, at: float | None = None) -> list[Transition]:
            return score(state, event, rules, at)[1]

        return bound

    def state_from_dict(raw: dict[str, Any], rules: Rules) -> Any:
        return lifecycle.LeadState.from_dict(raw, rules)

    def is_seen(state: Any, event_id: str) -> bool:
        return event_id in state.seen

    score_event = lifecycle.score_event  # type: ignore[assignment]
    expire = lifecycle.expire  # type: ignore[assignment]
    apply_rep_action = lifecycle.apply_rep_action  # type: ignore[assignment]

    def score_at(state: Any, t: float, rules: Rules) -> float:
        return state.score_at(t, rules)

    def engagement_at(state: Any, t: float, rules: Rules) -> float:
        return state.engagement_at(t, rules)


__all__ = [
    "KIND",
    "LeadState",
    "apply_rep_action",
    "engagement_at",
    "expire",
    "is_seen",
    "native_core",
    "new_state",
    "score_at",
    "score_event",
    "scorer",
    "state_from_dict",
]
