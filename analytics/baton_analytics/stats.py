"""Small descriptive statistics shared by the funnel and the comparison. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from baton_shared.stats import percentiles, ratio

__all__ = ["histogram", "percentiles", "ratio"]


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
