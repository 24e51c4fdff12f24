"""Recent ids: bounded, oldest forgotten first, a request's ids taken at once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from baton_ingest.dedup import RecentIds


def test_oldest_ids_are_forgotten_first_and_a_repeat_counts_as_recent() -> None:
    recent = RecentIds(capacity=3)
    recent.add_all(["a", "b", "c"])
    recent.add("a")  # a is the newest now
    recent.add_all(["d"])
    assert recent.seen(["a", "b", "c", "d"]) == [True, False, True, True]


def test_zero_capacity_remembers_nothing() -> None:
    recent = RecentIds(capacity=0)
    recent.add_all(["a"])
    assert "a" not in recent


@settings(max_examples=200, deadline=None, database=None)
@given(
    capacity=st.integers(0, 5),
    requests=st.lists(st.lists(st.sampled_from("abcdefgh"), max_size=6), max_size=6),
)
def test_taking_a_request_at_once_remembers_the_newest_ids_one_by_one_would(
    capacity: int, requests: list[list[str]]
) -> None:
    recent, newest_last = RecentIds(capacity), []
    for ids in requests:
        recent.add_all(ids)
        for event_id in ids:  # the reference: one id at a time, trimmed every time
            newest_last = [i for i in newest_last if i != event_id] + [event_id]
            newest_last = newest_last[-capacity:] if capacity else []
    assert recent.seen("abcdefgh") == [i in newest_last for i in "abcdefgh"]
