"""Small descriptive statistics shared by the funnel and the comparison. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentiles(values: Iterable[float], ps: Sequence[float]) -> dict[float, float]:
    """Nearest-rank percentiles (empty input: empty dict)."""
    ordered = sorted(values)
    if not ordered:
        return {}
    n = len(ordered)
    return {p: ordered[min(n - 1, max(0, math.ceil(p / 100 * n) - 1))] for p in ps}


def histogram(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    """Counts per bin ``[edges[i], edges[i+1])``; the last bin also holds larger values."""
    counts = [0] * (len(edges) - 1)
    for v in values:
        for i in range(len(edges) - 1):
            if v < edges[i + 1] or i == len(edges) - 2:
                if v >= edges[i] or i == 0:
                    counts[i] += 1
                break
    return counts


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None
