"""A lead's stage, moved by events in event time. Pure: no clock reads, no I/O.

The core the stream and a future ``baton replay`` share:

* :func:`score_event` — dedup, traits and fit, engagement (caps, first-time-only,
  per-group decay), then the stage decision at the lead's event-time watermark
  (the latest event time seen; a late event is never scored "in the past", which
  would un-decay newer points). It first fires a cold timer that an event newer
  than it proves has passed, so replay and the live stream agree.
* :func:`due_at` — when the lead's recycle timer fires (closed form).
* :func:`expire` — fire that timer at a given event time.
* :func:`apply_rep_action` — a rep's BANT confirmation or rejection.

For speed the hot path (``score_event``) updates the state it is given in place
and returns it; :func:`apply_event` is the copying, functional form.

Stages: new → mql → sql; sql → recycled (nurture, MQL level) when cold, decayed
or rejected; recycled → sql again at ``sql + hysteresis``; any → disqualified on
a competitor's email domain. Transition ids are ``stable_id(lead, stage, trigger)``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from baton_scorer.decay import Engagement, sum_falls_below_at
from baton_scorer.points import fit_points, is_competitor
from baton_scorer.rules import DEFAULT_GROUP, CompiledRule, Rules
from baton_shared.ids import stable_id
from baton_shared.schemas import (
    LeadEvent,
    ReasonKind,
    Signal,
    Stage,
    Transition,
    trusted_constructor,
)

STAGE_ORDER = {Stage.NEW: 0, Stage.RECYCLED: 1, Stage.MQL: 1, Stage.SQL: 2}
DEDUP_WINDOW = 500
TOP_SIGNALS = 3
CAP_HORIZON_SECONDS = 90 * 86_400  # capped windows older than this behind the watermark are dropped


@dataclass(slots=True)
class LeadState:
    """What the scorer remembers about one lead (JSON-able through to_dict/from_dict).

    Engagement, per half-life group and per signal, is kept as its value at one
    reference time ``origin`` (epoch seconds): the value at ``t`` is
    ``A * 2 ** (-(t - origin) / h)``, and an event of ``p`` points at ``t_e`` adds
    ``p * 2 ** ((t_e - origin) / h)`` — ARCHITECTURE.md's linear decay with one shared
    reference, so scoring an event costs one power per half-life however many groups
    and signals it touches. ``origin`` is moved forward (everything rescaled) once an
    event lies far past it, long before the powers could overflow.
    """

    stage: Stage = Stage.NEW
    fit: float = 0.0
    groups: dict[str, float] = field(default_factory=dict)
    signals: dict[str, float] = field(default_factory=dict)
    origin: float | None = None
    # label -> window start (str) -> [[event_time, event_id, counted_points], ...] in time order
    capped: dict[str, dict[str, list[list[Any]]]] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    email: str | None = None
    seen: dict[str, None] = field(default_factory=dict)
    watermark: float | None = None
    last_engaged_at: float | None = None
    stage_at: float | None = None
    bant: tuple[str, ...] = ()
    sql_ready: bool = False
    # A lower bound of due_at() (positive points only push it later): timers fire at it,
    # then recompute; kept so the hot path need not solve for the crossing on every event.
    due: float | None = None

    @property
    def engagement(self) -> Engagement:
        """The default group (all engagement when no groups are configured) as a pair:
        its value at the lead's reference time, and that time. ``.at(t, h)`` with the
        group's half-life gives its value at ``t``."""
        value = self.groups.get(DEFAULT_GROUP)
        if value is None or self.origin is None:
            return Engagement()
        return Engagement(value, self.origin)

    @property
    def recent_event_ids(self) -> tuple[str, ...]:
        return tuple(self.seen)

    def engagement_at(self, t: float, rules: Rules) -> float:
        origin = self.origin
        if origin is None:
            return 0.0
        hl = rules.compiled.group_half_life
        h0 = rules.half_life_seconds
        return sum(a * 2.0 ** ((origin - t) / hl.get(g, h0)) for g, a in self.groups.items())

    def score_at(self, t: float, rules: Rules) -> float:
        return self.fit + self.engagement_at(t, rules)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage.value,
            "fit": self.fit,
            "groups": self.groups,
            "signals": self.signals,
            "origin": self.origin,
            "capped": self.capped,
            "traits": self.traits,
            "email": self.email,
            "recent_event_ids": list(self.seen),
            "watermark": self.watermark,
            "last_engaged_at": self.last_engaged_at,
            "stage_at": self.stage_at,
            "bant": list(self.bant),
            "sql_ready": self.sql_ready,
            "due": self.due,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], rules: Rules | None = None) -> LeadState:
        """The state :meth:`to_dict` wrote. ``rules`` (their half-lives) are needed only
        for entries written before engagement had one reference time per lead."""
        groups, signals, origin = _engagement_from_dict(raw, rules)
        return cls(
            stage=Stage(raw["stage"]),
            fit=raw["fit"],
            groups=groups,
            signals=signals,
            origin=origin,
            capped=raw.get("capped", {}),
            traits=raw["traits"],
            email=raw["email"],
            seen=dict.fromkeys(raw["recent_event_ids"]),
            watermark=raw.get("watermark"),
            last_engaged_at=raw.get("last_engaged_at"),
            stage_at=raw.get("stage_at"),
            bant=tuple(raw.get("bant", ())),
            sql_ready=raw.get("sql_ready", False),
            due=raw.get("due"),
        )

    def clone(self) -> LeadState:
        return copy.deepcopy(self)


def _engagement_from_dict(
    raw: dict[str, Any], rules: Rules | None
) -> tuple[dict[str, float], dict[str, float], float | None]:
    groups = raw.get("groups", {})
    signals = raw.get("signals", {})
    pairs = [v for v in (*groups.values(), *signals.values()) if isinstance(v, list)]
    if not pairs:
        return dict(groups), dict(signals), raw.get("origin")
    # Written by an earlier version: a (value, reference time) pair per group and per
    # signal. Re-expressed at one reference time, the latest of theirs.
    if rules is None:
        raise ValueError("a lead state with per-group reference times needs the rules")
    origin = max(ref for _, ref in pairs)
    compiled = rules.compiled
    h0 = rules.half_life_seconds

    def at_origin(pair: list[float], h: float) -> float:
        value, ref = pair
        return value * 2.0 ** ((ref - origin) / h)

    return (
        {g: at_origin(p, compiled.group_half_life.get(g, h0)) for g, p in groups.items()},
        {s: at_origin(p, compiled.signal_half_life.get(s, h0)) for s, p in signals.items()},
        origin,
    )


@dataclass(frozen=True)
class Trigger:
    """What caused a decision: an event, a timer or a rep action."""

    id: str
    name: str | None
    at: float


def apply_event(
    state: LeadState, event: LeadEvent, rules: Rules
) -> tuple[LeadState, Transition | None]:
    """Functional form for one event: a new state and the last transition it caused."""
    new, transitions = score_event(state.clone(), event, rules)
    return new, (transitions[-1] if transitions else None)


def is_duplicate(state: LeadState, event: LeadEvent) -> bool:
    return event.event_id in state.seen


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
            state.traits = {**state.traits, **event.traits}
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
        and state.stage != Stage.DISQUALIFIED
        and is_competitor(state.email, rules)
    ):
        out.append(
            _move(
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
            out += _decide(state, event.lead_id, trigger, lane, rules, score)
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


def _decide(
    state: LeadState,
    lead_id: str,
    trigger: Trigger,
    lane: str | None,
    rules: Rules,
    score: float,
) -> list[Transition]:
    """The stage an event moves the lead to, given its ``score`` at the watermark."""
    stage = state.stage
    if stage in (Stage.DISQUALIFIED, Stage.SQL):
        return []
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
        missing = _missing_bant(state, rules)
        if not missing:
            out.append(
                _move(state, lead_id, Stage.SQL, kind, reason, trigger, rules, lane is not None)
            )
            return out
        state.sql_ready = True
        if stage == Stage.NEW:
            reason += f"; SQL awaits qualification ({', '.join(missing)})"
            out.append(_move(state, lead_id, Stage.MQL, kind, reason, trigger, rules, False))
        return out
    if stage == Stage.NEW and score >= th.mql:
        reason = f"score {score:.1f} reached MQL threshold {th.mql:g}"
        out.append(
            _move(state, lead_id, Stage.MQL, ReasonKind.THRESHOLD, reason, trigger, rules, False)
        )
    return out


def _missing_bant(state: LeadState, rules: Rules) -> list[str]:
    gate = rules.qualification
    if not gate.required:
        return []
    return [f for f in gate.bant if f not in state.bant]


_transition = trusted_constructor(Transition)
_signal = trusted_constructor(Signal)


def _move(
    state: LeadState,
    lead_id: str,
    to: Stage,
    kind: ReasonKind,
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
    transition = _transition(
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
    state.due = _due_floor(state, rules, t)
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
    return [_signal(signal=label, points=round(v, 3)) for v, label in values[:n]]


def _pairs(state: LeadState, rules: Rules) -> list[tuple[Engagement, float]]:
    hl = rules.compiled.group_half_life
    h0 = rules.half_life_seconds
    return [(Engagement(a, state.origin), hl.get(g, h0)) for g, a in state.groups.items()]


def _cold_due(state: LeadState, rules: Rules) -> float | None:
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
    cold = _cold_due(state, rules)
    if cold is not None:
        times.append(cold)
    below = rules.recycle.below_score
    if below is not None and state.origin is not None:
        crossing = sum_falls_below_at(_pairs(state, rules), below - state.fit)
        if crossing is not None:
            times.append(crossing)
    return min(times) if times else None


def _due_floor(state: LeadState, rules: Rules, t: float) -> float | None:
    """A lower bound of :func:`due_at`, cheap when every group is positive: a sum of
    decaying parts falls no faster than its fastest-decaying part, so it stays above
    ``level`` until ``t + h_min·log2(S(t)/level)``. Exact otherwise."""
    if state.stage != Stage.SQL:
        return None
    below = rules.recycle.below_score
    cold = _cold_due(state, rules)
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


def expire(state: LeadState, lead_id: str, now: float, rules: Rules) -> list[Transition]:
    """Fire the recycle timer if it is due at event time ``now`` (in place); when it is
    not, ``state.due`` becomes the exact due time."""
    due = due_at(state, rules)
    if due is None or due > now:
        state.due = due
        return []
    cold = _cold_due(state, rules)
    if cold is not None and math.isclose(due, cold):
        reason = f"no engagement for {rules.recycle.cold_days:g} days"
    else:
        reason = f"score decayed below recycle level {rules.recycle.below_score:g}"
    if state.watermark is None or due > state.watermark:
        state.watermark = due
    trigger = Trigger(f"timer:{due!r}", "recycle timer", due)
    return [
        _move(state, lead_id, Stage.RECYCLED, ReasonKind.RECYCLE, reason, trigger, rules, False)
    ]


def apply_rep_action(
    state: LeadState,
    lead_id: str,
    action_id: str,
    kind: str,
    at: float,
    rules: Rules,
    reason: str | None = None,
    bant: tuple[str, ...] = (),
) -> tuple[LeadState, list[Transition]]:
    """A rep's action (in place).

    ``qualified`` confirms BANT fields (and makes the lead SQL once the gate is
    satisfied); ``rejected`` sends an SQL back to nurture with the reason.
    """
    if action_id in state.seen:
        return state, []
    state.seen[action_id] = None
    trigger = Trigger(action_id, f"rep {kind}", at)
    if kind == "rejected" and state.stage == Stage.SQL:
        why = f"rejected by rep: {reason}" if reason else "rejected by rep"
        return state, [
            _move(state, lead_id, Stage.RECYCLED, ReasonKind.REJECTION, why, trigger, rules, False)
        ]
    if kind == "qualified":
        state.bant = tuple(sorted({*state.bant, *bant}))
        if state.stage in (Stage.NEW, Stage.MQL, Stage.RECYCLED) and not _missing_bant(
            state, rules
        ):
            t = max(state.watermark or at, at)
            th = rules.thresholds
            bar = th.sql + (th.hysteresis if state.stage == Stage.RECYCLED else 0)
            if state.sql_ready or state.score_at(t, rules) >= bar:
                why = f"qualified by rep ({', '.join(state.bant)})"
                return state, [
                    _move(
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
