"""Identity stitching (pure) and the cold-timer heap."""

from __future__ import annotations

import pytest

from baton_analytics.replay import replay_all
from baton_scorer.identity import MAX_PENDING, Alias, stitch
from baton_scorer.timers import TimerQueue


def test_anonymous_events_wait_until_an_identify_then_count_for_the_lead(make_event) -> None:
    alias = Alias()
    first = make_event("page", lead_id="anon-1", anonymous_id="anon-1", page_category="pricing")
    assert stitch(alias, first) == []
    identify = make_event("identify", lead_id="user-1", anonymous_id="anon-1", user_id="user-1")
    released = stitch(alias, identify)
    assert [(e.event_id, e.lead_id) for e in released] == [
        (first.event_id, "user-1"),
        (identify.event_id, "user-1"),
    ]
    assert released[0].occurred_at == first.occurred_at  # event time is kept
    later = make_event("page", lead_id="anon-1", anonymous_id="anon-1", page_category="docs")
    assert [e.lead_id for e in stitch(alias, later)] == ["user-1"]


def test_events_without_an_anonymous_id_pass_through(make_event) -> None:
    event = make_event("page", lead_id="user-2", page_category="docs")
    assert stitch(Alias(), event) == [event]


def test_held_anonymous_history_is_bounded(make_event) -> None:
    alias = Alias()
    for _ in range(MAX_PENDING + 5):
        stitch(alias, make_event("page", lead_id="a", anonymous_id="a", page_category="blog"))
    assert len(alias.pending) == MAX_PENDING
    assert alias.dropped == 5


def test_timer_queue_fires_each_lead_once_at_its_latest_due_time() -> None:
    timers = TimerQueue()
    timers.schedule("a", 10.0)
    timers.schedule("b", 5.0)
    timers.schedule("a", 20.0)  # moved later: the old entry is stale
    assert timers.pop_due(9.0) == ["b"]
    assert timers.pop_due(15.0) == []
    assert timers.pop_due(20.0) == ["a"]
    timers.schedule("c", 1.0)
    timers.schedule("c", None)  # no longer SQL
    assert timers.pop_due(100.0) == []


def test_alias_and_identify_combine_two_known_histories(make_event, rules) -> None:
    items = [
        make_event(
            "page", lead_id="x@acme.example", email="x@acme.example", page_category="pricing"
        ),
        make_event("identify", lead_id="u1", user_id="u1", email="x@acme.example"),
        make_event("page", lead_id="u1", user_id="u1", page_category="pricing"),
        make_event("alias", lead_id="u2", user_id="u2", previous_id="u1"),
        make_event("page", lead_id="u1", user_id="u1", page_category="pricing"),
    ]
    scores = replay_all(items, rules, None).final_scores
    assert scores.get("u2") == pytest.approx(120)  # today: email 40, u1 80, u2 0
