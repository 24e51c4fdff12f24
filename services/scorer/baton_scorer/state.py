"""What the scorer remembers about one lead, and the form the changelog stores. Pure.

:class:`LeadState` is updated in place by scoring (:mod:`baton_scorer.lifecycle`), the
recycle timer and rep actions (:mod:`baton_scorer.actions`); ``to_dict`` is what the
``leads`` table holds and ``from_dict`` reads it back, older layouts included.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from baton_scorer.decay import Engagement
from baton_scorer.rules import DEFAULT_GROUP, Rules
from baton_shared.schemas import Stage


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
    # Until when (event time) a nurtured lead's score cannot qualify it again.
    hold_until: float | None = None

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
            "hold_until": self.hold_until,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], rules: Rules | None = None) -> LeadState:
        """The state :meth:`to_dict` wrote. ``rules`` (their half-lives) are needed only
        for entries written before engagement had one reference time per lead."""
        groups, signals, origin = engagement_from_dict(raw, rules)
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
            hold_until=raw.get("hold_until"),
        )

    def clone(self) -> LeadState:
        return copy.deepcopy(self)


def engagement_from_dict(
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
