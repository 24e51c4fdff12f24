"""Time-decayed engagement kept as a pair (E, t_ref), per ARCHITECTURE.md.

The value at time t is ``E * 2 ** (-(t - t_ref) / h)``. Adding an event is
linear, so the result does not depend on the order events arrive in: late and
out-of-order events are exact, and replay reproduces production. Times are
epoch seconds; ``half_life_seconds`` is h. Pure: no clock reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Engagement:
    """Engagement points ``value`` as they stood at ``ref_at`` (epoch seconds)."""

    value: float = 0.0
    ref_at: float | None = None

    def at(self, t: float, half_life_seconds: float) -> float:
        """The decayed value at time ``t``."""
        if self.ref_at is None:
            return 0.0
        return self.value * 2.0 ** (-(t - self.ref_at) / half_life_seconds)

    def add(self, points: float, event_at: float, half_life_seconds: float) -> Engagement:
        """Add ``points`` earned at ``event_at``; the reference time only moves forward."""
        if self.ref_at is None:
            return Engagement(points, event_at)
        if event_at > self.ref_at:
            return Engagement(self.at(event_at, half_life_seconds) + points, event_at)
        return Engagement(
            self.value + points * 2.0 ** (-(self.ref_at - event_at) / half_life_seconds),
            self.ref_at,
        )


def falls_below_at(e: Engagement, level: float, half_life_seconds: float) -> float | None:
    """When the decaying value crosses below ``level``: t_ref + h·log2(E/L).

    None when it never will from above (already at or below, or level ≤ 0).
    """
    if e.ref_at is None or level <= 0 or e.value <= level:
        return None
    return e.ref_at + half_life_seconds * math.log2(e.value / level)
