"""A lead's state stays under its size caps however many events it gets."""

from __future__ import annotations

import orjson

from baton_scorer import core
from baton_scorer.bounds import MAX_PENDING_BYTES, MAX_TRAIT_KEYS, MAX_TRAITS_BYTES, TRIMMED
from baton_scorer.identity import Alias, stitch
from baton_scorer.rules import Rules
from baton_shared.schemas import EventType
from tests.scorer.conftest import MakeEvent


def trimmed(part: str) -> float:
    return TRIMMED.labels(part)._value.get()


def test_traits_stay_under_the_caps_and_keep_what_the_last_event_set(
    rules: Rules, make_event: MakeEvent
) -> None:
    state = core.new_state()
    before = trimmed("traits")
    for i in range(300):  # 300 events, each a new 1 KiB trait: 300 KiB unbounded
        traits = {f"custom_{i}": "x" * 1024, "title": "VP Sales"}
        core.score_event(state, make_event(EventType.IDENTIFY, traits=traits), rules)
    traits = dict(state.traits)
    assert len(traits) <= MAX_TRAIT_KEYS
    assert len(orjson.dumps(traits)) <= MAX_TRAITS_BYTES
    assert "custom_299" in traits and "custom_0" not in traits  # the oldest went first
    assert traits["title"] == "VP Sales"
    assert trimmed("traits") > before
    assert len(orjson.dumps(state.to_dict())) < 1024 * 1024  # fits a Kafka message


def test_held_anonymous_events_stay_under_the_byte_cap(make_event: MakeEvent) -> None:
    alias = Alias()
    before = trimmed("pending")
    big = {"blob": "y" * 20_000}  # an event near ingest's 32 KiB bound
    for i in range(40):
        event = make_event(
            EventType.PAGE, lead_id="anon-1", anonymous_id="anon-1", properties=big,
            event_id=f"e{i}",
        )
        assert stitch(alias, event) == []
    assert sum(alias.sizes) <= MAX_PENDING_BYTES
    assert alias.pending[-1].event_id == "e39"
    assert alias.dropped == 40 - len(alias.pending) > 0
    assert trimmed("pending") - before == alias.dropped
    stored = alias.to_bytes()
    assert len(stored) < 1024 * 1024
    assert Alias.from_bytes(stored).sizes == alias.sizes


def test_traits_with_integers_past_64_bits_are_merged(rules: Rules, make_event: MakeEvent) -> None:
    state = core.new_state()
    huge = {"employees": 2**70, "title": "VP Sales"}
    core.score_event(state, make_event(EventType.IDENTIFY, traits=huge), rules)
    assert dict(state.traits) == huge
