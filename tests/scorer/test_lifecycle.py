"""A lead's stage moved by events in event time: new -> mql -> sql, express lanes, dedup."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from baton_scorer.lifecycle import DEDUP_WINDOW, LeadState, apply_event, top_signals
from baton_scorer.rules import Rules, parse_rules
from baton_shared.schemas import LeadEvent, Stage

FAST = settings(max_examples=60, deadline=None, database=None)
T0 = datetime(2025, 6, 2, 14, 30, tzinfo=UTC)

# Positive, non-express events from the shipped rules: (type, track name or page category).
POSITIVE_EVENTS = [
    ("page", "pricing"),
    ("page", "docs"),
    ("page", "product"),
    ("page", "blog"),
    ("track", "Webinar Attended"),
    ("track", "Case Study Downloaded"),
]
NEGATIVE_EVENTS = [("page", "careers"), ("track", "Unsubscribed")]


def run(events: list[LeadEvent], rules: Rules, state: LeadState | None = None):
    state = state or LeadState()
    transitions = []
    for event in events:
        state, transition = apply_event(state, event, rules)
        if transition is not None:
            transitions.append(transition)
    return state, transitions


def score_at(state: LeadState, t: float, rules: Rules) -> float:
    return state.fit + state.engagement.at(t, rules.half_life_seconds)


def event_from_spec(make_event, spec: tuple[str, str, float], i: int) -> LeadEvent:
    kind, label, hours = spec
    at = T0 + timedelta(hours=hours)
    if kind == "track":
        return make_event("track", name=label, at=at, event_id=f"e{i}")
    return make_event("page", page_category=label, at=at, event_id=f"e{i}")


def _points(rules: Rules, kind: str, label: str) -> float:
    return rules.engagement.events[label] if kind == "track" else rules.engagement.pages[label]


def test_rules_used_here_exist_in_the_defaults(rules: Rules) -> None:
    for kind, label in POSITIVE_EVENTS:
        assert _points(rules, kind, label) > 0
        assert label not in rules.express_lanes
    for kind, label in NEGATIVE_EVENTS:
        assert _points(rules, kind, label) < 0


# --- express lanes ------------------------------------------------------------------------


def test_demo_request_makes_a_new_lead_sql_immediately(rules: Rules, make_event) -> None:
    assert "Demo Requested" in rules.express_lanes
    event = make_event("track", name="Demo Requested")
    state, transition = apply_event(LeadState(), event, rules)

    assert state.stage == Stage.SQL
    assert transition is not None
    assert transition.from_stage == Stage.NEW
    assert transition.to_stage == Stage.SQL
    assert transition.express is True
    assert transition.score < rules.thresholds.sql  # it is the lane, not the score
    assert "Demo Requested" in transition.reason
    assert transition.trigger_event == "Demo Requested"
    assert transition.trigger_event_id == event.event_id
    assert transition.lead_id == event.lead_id
    assert transition.occurred_at == event.occurred_at


def test_express_lane_lifts_an_mql_lead_to_sql(rules: Rules, make_event) -> None:
    mql = LeadState(stage=Stage.MQL)
    state, transition = apply_event(mql, make_event("track", name="Contact Sales"), rules)
    assert state.stage == Stage.SQL
    assert transition is not None
    assert (transition.from_stage, transition.to_stage, transition.express) == (
        Stage.MQL,
        Stage.SQL,
        True,
    )


def test_express_lane_on_an_sql_lead_emits_nothing(rules: Rules, make_event) -> None:
    state, transition = apply_event(
        LeadState(stage=Stage.SQL), make_event("track", name="Demo Requested"), rules
    )
    assert state.stage == Stage.SQL
    assert transition is None


def test_disqualified_lead_is_not_requalified_by_an_express_lane(rules: Rules, make_event) -> None:
    state, transition = apply_event(
        LeadState(stage=Stage.DISQUALIFIED), make_event("track", name="Demo Requested"), rules
    )
    assert state.stage == Stage.DISQUALIFIED
    assert transition is None


def test_express_page_name_is_not_an_express_lane(rules: Rules, make_event) -> None:
    state, transition = apply_event(
        LeadState(), make_event("page", name="Demo Requested", page_category="blog"), rules
    )
    assert state.stage == Stage.NEW
    assert transition is None


# --- thresholds -----------------------------------------------------------------------------


def test_page_views_accumulate_to_mql_at_the_threshold_then_sql(rules: Rules, make_event) -> None:
    per_view = rules.engagement.pages["docs"]
    views_for_mql = math.ceil(rules.thresholds.mql / per_view)
    views_for_sql = math.ceil(rules.thresholds.sql / per_view)
    assert 1 < views_for_mql < views_for_sql

    state = LeadState()
    for n in range(1, views_for_sql + 1):
        # All at the same instant, so nothing decays between views.
        state, transition = apply_event(state, make_event("page", page_category="docs"), rules)
        if n < views_for_mql:
            assert (state.stage, transition) == (Stage.NEW, None), n
        elif n == views_for_mql:
            assert transition is not None
            assert (transition.from_stage, transition.to_stage) == (Stage.NEW, Stage.MQL)
            assert transition.express is False
            assert transition.score == pytest.approx(n * per_view)
            assert transition.score >= rules.thresholds.mql
        elif n < views_for_sql:
            assert (state.stage, transition) == (Stage.MQL, None), n
        else:
            assert transition is not None
            assert (transition.from_stage, transition.to_stage) == (Stage.MQL, Stage.SQL)
            assert transition.score == pytest.approx(n * per_view)
            assert transition.express is False
    assert state.stage == Stage.SQL


def test_score_just_below_the_mql_threshold_stays_new(make_event) -> None:
    rules = parse_rules("name: t\nthresholds: {mql: 50, sql: 100}\nengagement:\n"
                        "  pages: {docs: 49.999}\n")
    state, transition = apply_event(LeadState(), make_event("page", page_category="docs"), rules)
    assert (state.stage, transition) == (Stage.NEW, None)


def test_a_big_jump_goes_straight_from_new_to_sql(make_event) -> None:
    rules = parse_rules("name: t\nthresholds: {mql: 50, sql: 100}\nengagement:\n"
                        "  pages: {pricing: 120}\n")
    state, transition = apply_event(
        LeadState(), make_event("page", page_category="pricing"), rules
    )
    assert state.stage == Stage.SQL
    assert transition is not None
    assert (transition.from_stage, transition.to_stage) == (Stage.NEW, Stage.SQL)


def test_points_earned_one_half_life_ago_count_half(rules: Rules, make_event) -> None:
    h = timedelta(seconds=rules.half_life_seconds)
    first = make_event("page", page_category="pricing", at=T0)
    second = make_event("page", page_category="docs", at=T0 + h)
    state, _ = run([first, second], rules)
    expected = rules.engagement.pages["pricing"] / 2 + rules.engagement.pages["docs"]
    t = second.occurred_at.timestamp()
    assert state.engagement.at(t, rules.half_life_seconds) == pytest.approx(expected)


def test_a_lead_never_moves_backwards(rules: Rules, make_event) -> None:
    state, _ = apply_event(LeadState(), make_event("track", name="Demo Requested"), rules)
    for _ in range(20):
        state, transition = apply_event(state, make_event("page", page_category="careers"), rules)
        assert transition is None
    assert state.stage == Stage.SQL
    assert score_at(state, state.engagement.ref_at, rules) < 0


# --- dedup and ids --------------------------------------------------------------------------


def test_duplicate_event_id_does_not_count_twice(rules: Rules, make_event) -> None:
    per_view = rules.engagement.pages["docs"]
    views_for_mql = math.ceil(rules.thresholds.mql / per_view)
    events = [make_event("page", page_category="docs") for _ in range(views_for_mql - 1)]
    state, transitions = run(events, rules)
    assert transitions == []

    redelivered = events[-1]
    again, transition = apply_event(state, redelivered, rules)
    assert transition is None
    assert again == state
    assert again.stage == Stage.NEW
    assert again.engagement == state.engagement


def test_redelivered_express_event_does_not_transition_twice(rules: Rules, make_event) -> None:
    demo = make_event("track", name="Demo Requested")
    state, first = apply_event(LeadState(stage=Stage.NEW), demo, rules)
    assert first is not None
    # Even if the stage were reset, the dedup window still recognises the event.
    again, second = apply_event(replace(state, stage=Stage.NEW), demo, rules)
    assert second is None
    assert again.stage == Stage.NEW


def test_dedup_window_is_bounded(rules: Rules, make_event) -> None:
    state, _ = run(
        [make_event("identify", event_id=f"id-{i}") for i in range(DEDUP_WINDOW + 10)], rules
    )
    assert len(state.recent_event_ids) == DEDUP_WINDOW
    assert state.recent_event_ids[-1] == f"id-{DEDUP_WINDOW + 9}"
    assert "id-0" not in state.recent_event_ids


def test_transition_id_is_deterministic_and_names_the_rules_version(
    rules: Rules, make_event
) -> None:
    event = make_event("track", name="Demo Requested", event_id="msg-42", lead_id="lead-42")
    _, first = apply_event(LeadState(), event, rules)
    _, second = apply_event(LeadState(), event.model_copy(), rules)
    assert first is not None and second is not None
    assert first.transition_id == second.transition_id
    assert first == second
    assert first.rules_version == rules.version

    other_event = make_event("track", name="Demo Requested", event_id="msg-43", lead_id="lead-42")
    _, third = apply_event(LeadState(), other_event, rules)
    assert third is not None
    assert third.transition_id != first.transition_id

    other_lead = make_event("track", name="Demo Requested", event_id="msg-42", lead_id="lead-43")
    _, fourth = apply_event(LeadState(), other_lead, rules)
    assert fourth is not None
    assert fourth.transition_id != first.transition_id


def test_transition_names_the_rules_that_produced_it(rules: Rules, make_event) -> None:
    edited = parse_rules(
        "name: edited\nexpress_lanes: [Demo Requested]\n", "edited.yaml"
    )
    event = make_event("track", name="Demo Requested")
    _, by_default = apply_event(LeadState(), event, rules)
    _, by_edited = apply_event(LeadState(), event, edited)
    assert by_default is not None and by_edited is not None
    assert by_default.rules_version == rules.version
    assert by_edited.rules_version == edited.version
    assert by_edited.rules_version.startswith("edited@")


# --- fit --------------------------------------------------------------------------------------


def test_free_mail_email_gives_negative_fit(rules: Rules, make_event) -> None:
    domain = rules.fit.email_domains.free_mail[0]
    state, _ = apply_event(LeadState(), make_event("identify", email=f"jo@{domain}"), rules)
    assert state.fit == rules.fit.email_domains.free_mail_points
    assert state.fit < 0
    # A later event without an email keeps the remembered email and its fit.
    state, _ = apply_event(state, make_event("page", page_category="blog"), rules)
    assert state.email == f"jo@{domain}"
    assert state.fit == rules.fit.email_domains.free_mail_points


def test_free_mail_fit_is_part_of_the_transition_score(rules: Rules, make_event) -> None:
    domain = rules.fit.email_domains.free_mail[0]
    _, transition = apply_event(
        LeadState(), make_event("track", name="Demo Requested", email=f"jo@{domain}"), rules
    )
    assert transition is not None
    assert transition.fit == rules.fit.email_domains.free_mail_points
    assert transition.score == pytest.approx(transition.fit + transition.engagement)


def test_traits_merge_across_events_and_title_adds_fit(rules: Rules, make_event) -> None:
    state, _ = apply_event(LeadState(), make_event("identify", traits={"company": "Acme"}), rules)
    assert state.fit == 0
    state, _ = apply_event(state, make_event("identify", traits={"title": "VP Marketing"}), rules)
    assert state.traits == {"company": "Acme", "title": "VP Marketing"}
    expected = next(pts for pattern, pts in rules.title_patterns if pattern.search("VP Marketing"))
    assert expected > 0
    assert state.fit == expected


# --- persistence --------------------------------------------------------------------------------


def test_lead_state_round_trips_through_dict_and_json(rules: Rules, make_event) -> None:
    events = [
        make_event("identify", email="jo@gmail.com", traits={"title": "Director", "n": [1, 2]}),
        make_event("page", page_category="pricing", at=T0 + timedelta(hours=3)),
        make_event("page", page_category="docs", at=T0 + timedelta(hours=1)),
    ]
    state, _ = run(events, rules)
    assert state.engagement.ref_at is not None

    assert LeadState.from_dict(state.to_dict()) == state
    assert LeadState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert LeadState.from_dict(LeadState().to_dict()) == LeadState()


def test_restored_state_still_dedups(rules: Rules, make_event) -> None:
    event = make_event("page", page_category="pricing")
    state, _ = apply_event(LeadState(), event, rules)
    restored = LeadState.from_dict(json.loads(json.dumps(state.to_dict())))
    again, transition = apply_event(restored, event, rules)
    assert transition is None
    assert again == restored


# --- arrival order ------------------------------------------------------------------------------


@st.composite
def shuffled_histories(draw: st.DrawFn, kinds=tuple(POSITIVE_EVENTS)):
    specs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(kinds), st.integers(min_value=0, max_value=100 * 24)
            ).map(lambda kh: (kh[0][0], kh[0][1], float(kh[1]))),
            min_size=1,
            max_size=7,
        )
    )
    order = draw(st.permutations(range(len(specs))))
    return specs, order


def _in_time_order_and_arrived(make_event, specs, order):
    events = [event_from_spec(make_event, spec, i) for i, spec in enumerate(specs)]
    in_time = sorted(events, key=lambda e: e.occurred_at)
    arrived = [events[i] for i in order]
    return events, in_time, arrived


@FAST
@given(shuffled_histories(kinds=(*POSITIVE_EVENTS, *NEGATIVE_EVENTS)))
def test_final_engagement_does_not_depend_on_arrival_order(rules: Rules, make_event, history):
    specs, order = history
    events, in_time, arrived = _in_time_order_and_arrived(make_event, specs, order)
    expected, _ = run(in_time, rules)
    actual, _ = run(arrived, rules)

    later = max(e.occurred_at for e in events).timestamp() + 86_400
    scale = sum(abs(_points(rules, kind, label)) for kind, label, _ in specs)
    assert actual.watermark == expected.watermark
    assert math.isclose(
        score_at(actual, later, rules),
        score_at(expected, later, rules),
        rel_tol=1e-9,
        abs_tol=1e-9 * scale,
    )
    assert actual.fit == expected.fit
    assert set(actual.recent_event_ids) == {e.event_id for e in events}


# Two pricing views at t=0 arriving after one at t=100 days (the case in the reason below):
# an explicit failing example, so the expected failure is found at once, not by search.
LATE_OLD_EVENT = (
    [("page", "pricing", 0.0), ("page", "pricing", 0.0), ("page", "pricing", 100 * 24.0)],
    [2, 0, 1],
)

LATE_EVENT_LIMIT = (
    "Transitions are decided at the lead's event-time watermark (the latest event time "
    "seen). A late event changes the score exactly, but is not re-evaluated at its own, "
    "older time: two pricing views at t=0 that arrive after a view at t=100 days leave "
    "the lead NEW, while in time order they make it MQL at t=0. Deciding in the past "
    "would need the per-lead event history; see the scorer notes."
)


@pytest.mark.xfail(strict=True, reason=LATE_EVENT_LIMIT)
@FAST
@given(shuffled_histories())
@example(LATE_OLD_EVENT)
def test_final_stage_does_not_depend_on_arrival_order(rules: Rules, make_event, history):
    specs, order = history
    _, in_time, arrived = _in_time_order_and_arrived(make_event, specs, order)
    expected, _ = run(in_time, rules)
    actual, _ = run(arrived, rules)
    assert actual.stage == expected.stage


def test_late_old_page_view_does_not_make_a_lead_sql(rules: Rules, make_event) -> None:
    old = make_event("page", page_category="pricing", at=T0)
    new = make_event("page", page_category="pricing", at=T0 + timedelta(days=100))
    in_time, _ = run([old, new], rules)
    assert in_time.stage == Stage.NEW  # 100 days apart, each view alone is below MQL

    newest_first, transitions = run([new, old], rules)
    assert transitions == []
    assert newest_first.stage == Stage.NEW


def test_state_written_with_per_group_reference_times_still_loads(rules: Rules, make_event) -> None:
    """Entries an earlier version wrote (a value and a reference time per group and
    per signal) load into one reference time with the same scores."""
    events = [
        make_event("page", page_category="pricing", at=T0),
        make_event("track", name="Webinar Attended", at=T0 + timedelta(days=3)),
    ]
    state, _ = run(events, rules)
    old = state.to_dict()
    h = rules.half_life_seconds
    ref = (T0 + timedelta(days=3)).timestamp()
    # The same engagement as an earlier version stored it: each pair at its own time.
    origin = state.origin
    assert origin is not None
    old["groups"] = {g: [a * 2.0 ** ((origin - ref) / h), ref] for g, a in state.groups.items()}
    old["signals"] = {
        s: [a * 2.0 ** ((origin - T0.timestamp()) / h), T0.timestamp()]
        for s, a in state.signals.items()
    }
    del old["origin"]
    restored = LeadState.from_dict(json.loads(json.dumps(old)), rules)
    later = ref + 86_400
    assert restored.score_at(later, rules) == pytest.approx(state.score_at(later, rules))
    expected = top_signals(state, later, rules)
    assert [s.signal for s in top_signals(restored, later, rules)] == [s.signal for s in expected]
    assert [s.points for s in top_signals(restored, later, rules)] == pytest.approx(
        [s.points for s in expected]
    )
    with pytest.raises(ValueError, match="needs the rules"):
        LeadState.from_dict(old)
