"""The collector settings the services and long analyst runs use."""

from __future__ import annotations

import gc

from baton_shared.gc_tuning import GEN0_THRESHOLD, batch_gc


def test_batch_gc_collects_rarely_inside_and_restores_the_thresholds_after() -> None:
    before = gc.get_threshold()
    with batch_gc():
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
        assert gc.get_freeze_count() > 0  # start-up objects are out of every collection
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
