"""The cyclic garbage collector, tuned for a long read that allocates without cycles.

A replay decodes and scores every record of a range: millions of short-lived objects
(records, events, their dicts) and, growing all the while, every lead's state. With
the default thresholds the collector runs every 700 allocations and its older
generations rescan that growing state again and again; on a 100k-event replay that
was about half of the decode's CPU time. Reference counting frees what a replay drops
(none of it forms cycles), so the collector runs rarely here and never scans what
existed before the run.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

GEN0_THRESHOLD = 100_000  # allocations between young collections (default 700)


@contextmanager
def batch_gc() -> Iterator[None]:
    """Freeze what exists now out of every collection and collect rarely, then restore."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
