"""The cyclic garbage collector, tuned for services that allocate much and cycle little.

Baton's hot paths (a batch of events, a routed batch, a replayed range) allocate many
short-lived objects that reference counting frees; none of them form cycles. With the
default thresholds the collector runs every 700 allocations, and its older
generations rescan every long-lived object (a worker's cached lead states, a
replay's growing state) again and again. So: freeze what exists after start-up out
of every later collection, and collect young objects every 50,000 allocations.
Cycles are still collected, just rarely.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

GEN0_THRESHOLD = 50_000  # allocations between young collections (default 700)


def tune_for_throughput() -> None:
    """For a service's main, once start-up is done."""
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, 50, 100)


@contextmanager
def batch_gc() -> Iterator[None]:
    """:func:`tune_for_throughput` for the duration of a long run, then restored."""
    thresholds = gc.get_threshold()
    tune_for_throughput()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
