"""Time-decayed engagement kept as a pair (E, t_ref), per ARCHITECTURE.md.

The value at time t is ``E * 2 ** (-(t - t_ref) / h)``. Adding an event is
linear, so the result does not depend on the order events arrive in: late and
out-of-order events are exact, and replay reproduces production. Times are
epoch seconds; ``half_life_seconds`` is h. Pure: no clock reads.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class Engagement(NamedTuple):
    """Engagement points ``value`` as they stood at ``ref_at`` (epoch seconds).

    A named tuple rather than a dataclass: the hot path creates one per event.
    """

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


def sum_falls_below_at(parts: list[tuple[Engagement, float]], level: float) -> float | None:
    """When a sum of decaying pairs ``(engagement, half_life_seconds)`` falls below ``level``.

    Pairs with the same half-life collapse to one pair (linearity), so a single
    half-life is the closed form of :func:`falls_below_at`. With several, the sum
    is decreasing while every part is positive and the crossing is found by
    bisection to a millisecond. None when it never crosses from above.
    """
    by_h: dict[float, Engagement] = {}
    for e, h in parts:
        if e.ref_at is None:
            continue
        prev = by_h.get(h)
        if prev is None:
            by_h[h] = e
        else:
            ref = max(prev.ref_at or e.ref_at, e.ref_at)
            by_h[h] = Engagement(prev.at(ref, h) + e.at(ref, h), ref)
    if not by_h:
        return None
    if len(by_h) == 1:
        ((h, e),) = by_h.items()
        return falls_below_at(e, level, h)
    if level <= 0:
        return None
    start = max(e.ref_at for e in by_h.values())  # type: ignore[type-var]

    def total(t: float) -> float:
        return sum(e.at(t, h) for h, e in by_h.items())

    if total(start) <= level:
        return None
    if all(e.value > 0 for e in by_h.values()):
        return _newton(by_h, level, start)
    n = len(by_h)
    ends = [falls_below_at(e, level / n, h) for h, e in by_h.items()]
    hi = max([start, *(t for t in ends if t is not None)])
    if total(hi) >= level:  # negative parts: widen until it falls, or give up
        for _ in range(64):
            hi = start + 2 * (hi - start) + 1
            if total(hi) < level:
                break
        else:
            return None
    lo = start
    while hi - lo > 1e-3:
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if total(mid) < level:
            hi = mid
        else:
            lo = mid
    return hi


def _newton(by_h: dict[float, Engagement], level: float, t: float) -> float:
    """Positive parts: the sum is convex and decreasing, so Newton's method from the
    left never overshoots and converges quadratically."""
    parts = [(e.value, e.ref_at or 0.0, h) for h, e in by_h.items()]
    for _ in range(100):
        f = -level
        slope = 0.0
        for value, ref, h in parts:
            v = value * 2.0 ** (-(t - ref) / h)
            f += v
            slope -= v * _LN2 / h
        if f <= 0 or slope == 0:
            break
        step = f / -slope
        t += step
        if step < 1e-4:
            break
    return t


_LN2 = math.log(2.0)
