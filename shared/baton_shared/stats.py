"""Small descriptive statistics: nearest-rank percentiles and a ratio that is None for
an empty whole. Pure; used by the conversion figures and ``baton``'s reports."""

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


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None
