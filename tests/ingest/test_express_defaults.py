"""Ingest's default express events are the shipped scoring rules' express lanes: a demo
request the rules route at once also travels the express path."""

from __future__ import annotations

from baton_ingest.config import DEFAULT_EXPRESS_EVENTS
from baton_scorer.rules import load_rules


def test_ingest_expresses_every_named_express_lane_of_the_shipped_rules() -> None:
    rules = load_rules()
    named = {lane for lane in rules.express_lanes if isinstance(lane, str)}
    assert DEFAULT_EXPRESS_EVENTS == named
