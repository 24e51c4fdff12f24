"""The worker's bounded caches, the incremental timer refill and the standby lag: pure parts."""

from __future__ import annotations

from baton_scorer.local_store import evict
from baton_scorer.stream import standby_lag, stored_due
from baton_scorer.timers import TimerQueue


def test_evict_drops_the_least_recently_saved_past_the_bound() -> None:
    cache = {"a": 1, "b": 2, "c": 3}
    cache["a"] = cache.pop("a")  # saved again: most recent
    assert evict(cache, 2) == ["b"]
    assert list(cache) == ["c", "a"]
    assert evict(cache, 5) == []


def test_evict_by_weight_drops_the_oldest_until_the_weights_fit() -> None:
    # An account weighs its member leads: one large account displaces several small.
    cache = {"old": 1, "big": 900, "new": 200}
    assert evict(cache, 1000, weight=lambda members: members) == ["old", "big"]
    assert list(cache) == ["new"]
    assert evict(cache, 1000, weight=lambda members: members) == []


def test_refill_comes_in_chunks_and_a_live_schedule_beats_the_stored_copy() -> None:
    timers = TimerQueue()
    stored = iter([("old", 10.0), ("moved", 20.0), ("later", 30.0)])
    assert timers.refill(stored, chunk=1) is True  # more to come
    assert len(timers) == 1
    timers.schedule("moved", 50.0)  # a batch saved it meanwhile
    assert timers.refill(stored, chunk=10) is False  # done
    assert timers.pop_due(40.0) == ["old", "later"]
    assert timers.pop_due(60.0) == ["moved"]


def test_stored_due_reads_the_timer_saved_with_a_state() -> None:
    assert stored_due(b'{"stage":"sql","due":123.5}') == 123.5
    assert stored_due(b'{"stage":"mql"}') is None
    assert stored_due(None) is None


def test_standby_lag_counts_records_not_read_up_to_the_assigned_end() -> None:
    highwaters = {"p0": 99, "p1": 49, "p2": -1}  # last offsets when assigned; p2 empty
    offsets = {"p0": 89, "p1": 60, "p2": None}  # p1 read past it since
    assert standby_lag(highwaters, offsets) == 10
    assert standby_lag({"p0": 9}, {}) == 10  # nothing read yet
