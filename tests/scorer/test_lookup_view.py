"""A lookup: the keys it takes, the lead ids it tries, the view decayed to now by the core."""

from __future__ import annotations

from datetime import timedelta

import pytest

from baton_scorer import core
from baton_scorer.lookup import BadKey, checked_key, lead_ids_for, lead_view
from baton_scorer.rules import Rules
from tests.scorer.conftest import T0, MakeEvent


@pytest.mark.parametrize(
    ("key", "rule"),
    [("", "missing"), ("   ", "missing"), ("x" * 321, "string_too_long"),
     ("a\x00b", "control_character"), ("a\nb", "control_character")],
)  # fmt: skip
def test_a_key_no_lead_can_have_is_refused_with_the_rule_it_breaks(key: str, rule: str) -> None:
    with pytest.raises(BadKey) as refused:
        checked_key(key)
    assert refused.value.rule == rule


def test_an_email_is_also_tried_as_ingest_keys_it() -> None:
    assert checked_key("user-1") == "user-1"
    assert lead_ids_for("user-1") == [("user-1", "lead_id")]
    assert lead_ids_for("ada@example.com") == [("ada@example.com", "lead_id")]
    assert lead_ids_for(" Ada@Example.com") == [
        (" Ada@Example.com", "lead_id"),
        ("ada@example.com", "email"),
    ]


def test_the_view_decays_score_and_signals_to_now(rules: Rules, make_event: MakeEvent) -> None:
    state = core.new_state()
    events = [
        make_event("page", page_category="pricing", lead_id="l1"),
        make_event("page", page_category="pricing", lead_id="l1"),
        make_event("track", name="Demo Requested", lead_id="l1"),
    ]
    transitions = []
    for event in events:
        transitions += core.score_event(state, event, rules)[1]
    stored = state.to_dict()

    at_event_time = lead_view("l1", stored, rules, T0.timestamp(), "lead_id")
    assert at_event_time.stage == transitions[-1].to_stage.value
    assert at_event_time.score == pytest.approx(transitions[-1].score, abs=1e-6)
    assert sum(s.points for s in at_event_time.signals) == pytest.approx(
        at_event_time.engagement, abs=0.01
    )
    assert at_event_time.recent_event_ids == [e.event_id for e in reversed(events)]

    later = T0 + timedelta(days=rules.engagement.half_life_days)
    decayed = lead_view("l1", stored, rules, later.timestamp(), "lead_id")
    assert decayed.fit == at_event_time.fit
    assert decayed.score == pytest.approx(core.score_at(state, later.timestamp(), rules))
    assert decayed.engagement == pytest.approx(at_event_time.engagement / 2, rel=0.05)
    assert [s.signal for s in decayed.signals] == [s.signal for s in at_event_time.signals]
    assert (decayed.merged_ids, decayed.account) == ([], None)
    assert decayed.rules_version == rules.version
