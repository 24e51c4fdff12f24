"""The full rules format: matchers, caps, first-time-only, fit, gate, recycling, hysteresis."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baton_scorer.decay import Engagement, sum_falls_below_at
from baton_scorer.lifecycle import (
    LeadState,
    apply_event,
    apply_rep_action,
    due_at,
    expire,
    score_event,
)
from baton_scorer.points import engagement_points, fit_points
from baton_scorer.rules import RulesError, parse_rules
from baton_shared.schemas import ReasonKind, Stage, Transition, decode

FAST = settings(max_examples=60, deadline=None, database=None)
T0 = datetime(2025, 6, 2, 0, 0, tzinfo=UTC)
DAY = 86_400.0

CAPPED = parse_rules(
    """
name: capped
engagement:
  half_life_days: 10
  groups:
    email: {half_life_days: 2}
  rules:
    - id: open
      match: {type: track, event: Email Opened}
      points: 2
      group: email
      cap: {points: 5, window_hours: 24}
    - id: first-trial-page
      match: {type: page, url: "*/trial*"}
      points: 30
      first_time_only: true
    - id: webinar-live
      match: {type: track, event: Webinar Attended, properties: {live: true}}
      points: 25
    - id: careers
      match: {page_category: careers}
      points: -10
"""
)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def run(events, rules, state=None):
    state = state or LeadState()
    out = []
    for e in events:
        state, transitions = score_event(state, e, rules)
        out += transitions
    return state, out


# --- matching ---------------------------------------------------------------------------------


def test_url_glob_and_properties_match(make_event) -> None:
    page = make_event("page", properties={"url": "https://x.example/trial/start"})
    assert engagement_points(page, CAPPED) == 30
    live = make_event("track", name="Webinar Attended", properties={"live": True})
    recorded = make_event("track", name="Webinar Attended", properties={"live": False})
    assert engagement_points(live, CAPPED) == 25
    assert engagement_points(recorded, CAPPED) == 0


def test_careers_page_costs_points(make_event) -> None:
    careers = make_event("page", page_category="careers")
    assert engagement_points(careers, CAPPED) == -10


def test_email_opens_count_at_most_the_cap_per_day(make_event) -> None:
    opens = [make_event("track", name="Email Opened", at=at(i)) for i in range(6)]
    state, _ = run(opens, CAPPED)
    t = at(5).timestamp()
    # 2 + 2 + 1 (capped at 5), decayed from hours 0, 1, 2 with a 2-day half-life
    expected = sum(
        p * 2 ** (-(t - at(h).timestamp()) / (2 * DAY)) for p, h in [(2, 0), (2, 1), (1, 2)]
    )
    assert state.engagement_at(t, CAPPED) == pytest.approx(expected)
    t25 = at(25).timestamp()
    before = state.engagement_at(t25, CAPPED)
    state, _ = run([make_event("track", name="Email Opened", at=at(25))], CAPPED, state)
    assert state.engagement_at(t25, CAPPED) == pytest.approx(before + 2)  # a new day's cap


def test_first_time_only_counts_the_earliest_visit_whatever_the_arrival_order(make_event) -> None:
    late_first = make_event("page", properties={"path": "/trial"}, at=at(0), event_id="a")
    later = make_event("page", properties={"path": "/trial"}, at=at(48), event_id="b")
    forward, _ = run([late_first, later], CAPPED)
    backward, _ = run([later, late_first], CAPPED)
    t = at(100).timestamp()
    assert forward.engagement_at(t, CAPPED) == pytest.approx(backward.engagement_at(t, CAPPED))
    assert forward.engagement_at(t, CAPPED) == pytest.approx(30 * 2 ** (-100 / 240))


def test_a_rule_that_changes_from_first_time_only_to_a_daily_cap_keeps_scoring(
    trial_rule_changes,
) -> None:
    """Rules change without a restart and a lead's state keeps what earlier rules
    recorded: a rule that was first-time-only and is now capped per day goes on scoring
    (the old bookkeeping once raised, and the worker dead-lettered the event)."""
    state = LeadState()
    for rules, event in zip(*trial_rule_changes, strict=True):
        score_event(state, event, rules)
    after, end = trial_rule_changes[0][-1], trial_rule_changes[1][-1].occurred_at.timestamp()
    assert state.engagement_at(end, after) == pytest.approx(
        30 * 2 ** -(48 / (14 * 24)) + 30 * 2 ** -(24 / (14 * 24)) + 30
    )


@st.composite
def capped_histories(draw):
    kinds = [
        ("track", "Email Opened", {}),
        ("page", None, {"url": "https://a/trial"}),
        ("track", "Webinar Attended", {"live": True}),
        ("page", "careers", {}),
    ]
    raw = draw(
        st.lists(
            st.tuples(st.sampled_from(kinds), st.integers(min_value=0, max_value=24 * 20)),
            min_size=1,
            max_size=12,
        )
    )
    order = draw(st.permutations(range(len(raw))))
    return raw, order


@FAST
@given(capped_histories())
def test_capped_engagement_does_not_depend_on_arrival_order(make_event, history) -> None:
    raw, order = history
    events = []
    for i, ((kind, label, props), hours) in enumerate(raw):
        fields = {"name": label} if kind == "track" else {"page_category": label}
        events.append(make_event(kind, at=at(hours), event_id=f"e{i}", properties=props, **fields))
    in_time = sorted(events, key=lambda e: (e.occurred_at, e.event_id))
    arrived = [events[i] for i in order]
    a, _ = run(in_time, CAPPED)
    b, _ = run(arrived, CAPPED)
    t = at(24 * 30).timestamp()
    assert b.engagement_at(t, CAPPED) == pytest.approx(a.engagement_at(t, CAPPED), abs=1e-9)
    assert b.last_engaged_at == a.last_engaged_at


# --- fit ----------------------------------------------------------------------------------------


FIT = parse_rules(
    """
name: fit
fit:
  title: {"\\\\bvp\\\\b": 20}
  company_size: [{min: 1000, points: 15}, {min: 50, max: 999, points: 10}]
  industry: {Software: 10}
  country: {DE: 5}
  email_domains:
    free_mail: [gmail.com]
    free_mail_points: -10
    competitors: [rival.example]
    points: {bigcustomer.example: 7}
"""
)


def test_fit_adds_title_size_industry_country_and_domain() -> None:
    traits = {"title": "VP Sales", "employees": 200, "industry": "software", "country": "DE"}
    assert fit_points(traits, "jo@bigcustomer.example", FIT) == 20 + 10 + 10 + 5 + 7
    assert fit_points({"employees": 5000}, "jo@gmail.com", FIT) == 15 - 10
    assert fit_points({"employees": True}, None, FIT) == 0


def test_competitor_domain_disqualifies_and_nothing_requalifies(make_event) -> None:
    state, transition = apply_event(
        LeadState(), make_event("identify", email="x@rival.example"), FIT
    )
    assert transition is not None
    assert (transition.to_stage, transition.reason_kind) == (
        Stage.DISQUALIFIED,
        ReasonKind.DISQUALIFIED,
    )
    state, transition = apply_event(state, make_event("track", name="Demo Requested"), FIT)
    assert transition is None and state.stage == Stage.DISQUALIFIED


# --- transitions carry their explanation ----------------------------------------------------------


def test_transition_lists_top_signals_and_reason_kind(rules, make_event) -> None:
    events = [
        make_event("page", page_category="pricing"),
        make_event("page", page_category="docs"),
        make_event("page", page_category="blog"),
        make_event("page", page_category="pricing"),
    ]
    _, transitions = run(events, rules)
    mql = transitions[0]
    assert mql.to_stage == Stage.MQL
    assert mql.reason_kind == ReasonKind.THRESHOLD
    assert [s.signal for s in mql.top_signals] == ["page:pricing", "page:docs"]
    assert mql.top_signals[0].points == pytest.approx(40)


# --- qualification gate --------------------------------------------------------------------------

GATED = parse_rules(
    "name: gated\nexpress_lanes: [Demo Requested]\nqualification: {required: true}\n"
)


def test_gate_holds_an_express_lead_at_mql_until_bant_is_confirmed(make_event) -> None:
    state, transition = apply_event(LeadState(), make_event("track", name="Demo Requested"), GATED)
    assert transition is not None and transition.to_stage == Stage.MQL
    assert "awaits qualification" in transition.reason
    state, out = apply_rep_action(
        state, "lead-1", "a1", "qualified", T0.timestamp(), GATED, bant=("budget", "authority")
    )
    assert out == []
    state, out = apply_rep_action(
        state, "lead-1", "a2", "qualified", T0.timestamp(), GATED, bant=("need", "timeline")
    )
    assert [(t.to_stage, t.reason_kind) for t in out] == [(Stage.SQL, ReasonKind.QUALIFICATION)]


# --- recycling and hysteresis ---

RECYCLE = parse_rules(
    """
name: recycle
thresholds: {mql: 50, sql: 100, hysteresis: 10}
engagement:
  half_life_days: 10
  pages: {pricing: 60}
express_lanes: [Demo Requested]
recycle: {cold_days: 30, below_score: 40}
"""
)


def test_sql_decays_below_recycle_level_at_the_closed_form_time(make_event) -> None:
    state, _ = run(
        [make_event("page", page_category="pricing", at=at(0)) for _ in range(2)], RECYCLE
    )
    assert state.stage == Stage.SQL
    due = due_at(state, RECYCLE)
    expected = T0.timestamp() + 10 * DAY * math.log2(120 / 40)
    assert due == pytest.approx(expected)
    assert expire(state, "lead-1", due - 1, RECYCLE) == []
    (recycled,) = expire(state, "lead-1", due, RECYCLE)
    assert (recycled.to_stage, recycled.reason_kind) == (Stage.RECYCLED, ReasonKind.RECYCLE)
    assert recycled.score == pytest.approx(40)
    assert recycled.occurred_at.timestamp() == pytest.approx(due)


def test_express_sql_goes_cold_after_30_days_without_engagement(make_event) -> None:
    state, _ = run([make_event("track", name="Demo Requested", at=at(0))], RECYCLE)
    assert due_at(state, RECYCLE) == pytest.approx(T0.timestamp() + 30 * DAY)
    # An event after the due time first fires the timer, exactly as the live stream would.
    _, out = run([make_event("page", page_category="blog", at=at(31 * 24))], RECYCLE, state)
    assert [t.to_stage for t in out] == [Stage.RECYCLED]
    assert "30 days" in out[0].reason


def test_rejected_sql_goes_to_nurture_with_the_reason(make_event) -> None:
    state, _ = run([make_event("track", name="Demo Requested")], RECYCLE)
    state, out = apply_rep_action(
        state, "lead-1", "act-9", "rejected", T0.timestamp(), RECYCLE, reason="no budget"
    )
    assert [(t.to_stage, t.reason_kind) for t in out] == [(Stage.RECYCLED, ReasonKind.REJECTION)]
    assert "no budget" in out[0].reason


def test_hysteresis_a_recycled_lead_needs_sql_plus_margin(make_event) -> None:
    state = LeadState(stage=Stage.RECYCLED)
    rules = parse_rules(
        "name: h\nthresholds: {mql: 50, sql: 100, hysteresis: 10}\n"
        "engagement: {pages: {a: 105, b: 10}}\nrecycle: {cold_days: 30}\n"
    )
    state, t1 = apply_event(state, make_event("page", page_category="a"), rules)
    assert t1 is None and state.stage == Stage.RECYCLED  # 105 < 110: no flap back to SQL
    state, t2 = apply_event(state, make_event("page", page_category="b"), rules)
    assert t2 is not None and t2.to_stage == Stage.SQL


def test_recycle_level_must_leave_room_for_hysteresis() -> None:
    with pytest.raises(RulesError, match=r"recycle\.below_score"):
        parse_rules("name: x\nthresholds: {sql: 100, hysteresis: 10}\nrecycle: {below_score: 95}\n")


@FAST
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=1, max_value=200),
            st.floats(min_value=0, max_value=40),
            st.sampled_from([DAY * 2, DAY * 7, DAY * 14]),
        ),
        min_size=1,
        max_size=6,
    ),
    st.floats(min_value=1, max_value=100),
)
def test_multi_group_crossing_matches_a_brute_force_scan(parts, level) -> None:
    pairs = [(Engagement(v, 1.7e9 + d * DAY), h) for v, d, h in parts]

    def total(t: float) -> float:
        return sum(e.at(t, h) for e, h in pairs)

    crossing = sum_falls_below_at(pairs, level)
    start = max(e.ref_at for e, _ in pairs)
    if total(start) <= level:
        assert crossing is None
        return
    assert crossing is not None
    assert total(crossing) <= level * (1 + 1e-9)
    assert total(crossing - 60) > level  # a minute earlier it was still above
    # brute force: hourly scan from the last reference time
    t = start
    while total(t) >= level:
        t += 3600
    assert crossing <= t and crossing > t - 3600 - 1e-6


# --- validation names line and field -----------------------------------------------------------


def test_validation_error_names_the_line_and_the_field() -> None:
    text = "name: x\nengagement:\n  rules:\n    - match: {event: Foo}\n      points: lots\n"
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "r.yaml")
    message = str(caught.value)
    assert "r.yaml line 5" in message
    assert "engagement.rules[0].points" in message


def test_unknown_group_is_refused() -> None:
    text = "name: x\nengagement:\n  rules:\n    - {match: {event: A}, points: 1, group: nope}\n"
    with pytest.raises(RulesError, match="nope"):
        parse_rules(text)


def test_cap_needs_positive_points() -> None:
    text = (
        "name: x\nengagement:\n  rules:\n"
        "    - {match: {event: A}, points: -1, first_time_only: true}\n"
    )
    with pytest.raises(RulesError, match="positive"):
        parse_rules(text)


def test_duplicate_rule_ids_are_refused() -> None:
    text = (
        "name: x\nengagement:\n  rules:\n    - {id: a, match: {event: A}, points: 1}\n"
        "    - {id: a, match: {event: B}, points: 1}\n"
    )
    with pytest.raises(RulesError, match="used twice"):
        parse_rules(text)


# --- one reference time: long histories, lower-bound timers, wire-valid output -----------------

SHORT_HALF_LIFE = parse_rules(
    """
name: short
thresholds: {mql: 50, sql: 100}
engagement:
  half_life_days: 0.01   # 14.4 minutes: 256 half-lives pass in under three days
  pages: {pricing: 60}
recycle: {cold_days: null, below_score: 40}
"""
)


def test_years_of_history_on_a_short_half_life_stay_exact(make_event) -> None:
    """Thousands of half-lives between events: the reference time moves forward and the
    score is still the closed form, never an overflow or a NaN."""
    h = SHORT_HALF_LIFE.half_life_seconds
    state = LeadState()
    times = [at(24.0 * day) for day in range(0, 730, 7)]  # two years, weekly
    for i, when in enumerate(times):
        score_event(
            state,
            make_event("page", page_category="pricing", at=when, event_id=f"p{i}"),
            SHORT_HALF_LIFE,
        )
    last = times[-1].timestamp()
    expected = sum(60 * 2.0 ** (-(last - t.timestamp()) / h) for t in times)
    assert state.score_at(last, SHORT_HALF_LIFE) == pytest.approx(expected, rel=1e-12)
    assert state.score_at(last + 10 * h, SHORT_HALF_LIFE) == pytest.approx(expected / 1024)
    # A late event from the first week still lands exactly (it has long decayed away).
    score_event(
        state,
        make_event("page", page_category="pricing", at=at(1), event_id="late"),
        SHORT_HALF_LIFE,
    )
    assert state.score_at(last, SHORT_HALF_LIFE) == pytest.approx(expected, rel=1e-12)


TWO_GROUPS = parse_rules(
    """
name: two-groups
thresholds: {mql: 50, sql: 100}
engagement:
  half_life_days: 14
  groups:
    email: {half_life_days: 2}
  events: {Webinar Attended: 70}
  rules:
    - id: click
      match: {type: track, event: Email Clicked}
      points: 40
      group: email
recycle: {cold_days: 60, below_score: 40}
"""
)


def test_stored_due_is_a_lower_bound_and_the_timer_fires_at_the_exact_time(make_event) -> None:
    events = [
        make_event("track", name="Webinar Attended", at=at(0)),
        make_event("track", name="Email Clicked", at=at(1)),
    ]
    state, _ = run(events, TWO_GROUPS)
    assert state.stage == Stage.SQL
    exact = due_at(state, TWO_GROUPS)
    assert exact is not None and state.due is not None
    assert state.due <= exact  # cheap bound: a timer never fires late
    # A timer popping at the bound recycles nothing and moves the lead's due to the exact time.
    assert expire(state, "lead-1", state.due, TWO_GROUPS) == [] or state.due == exact
    assert state.due == pytest.approx(exact)
    (recycled,) = expire(state, "lead-1", exact, TWO_GROUPS)
    assert recycled.occurred_at.timestamp() == pytest.approx(exact)
    assert recycled.score == pytest.approx(40, abs=1e-6)


def test_transitions_from_the_core_are_valid_on_the_wire(make_event) -> None:
    """The core builds transitions without validation (for speed); they must still be
    exactly what a consumer decodes."""
    events = [
        make_event(
            "identify",
            email="ada@acme.example",
            traits={"title": "VP Engineering", "employees": 1200, "country": "DE"},
        ),
        make_event("track", name="Webinar Attended", at=at(1)),
        make_event("track", name="Email Clicked", at=at(2)),
    ]
    _, transitions = run(events, TWO_GROUPS)
    assert [t.to_stage for t in transitions] == [Stage.MQL, Stage.SQL]
    for t in transitions:
        assert decode(Transition, t.to_bytes()) == t
    sql = transitions[-1]
    assert sql.email == "ada@acme.example"
    assert sql.traits["country"] == "DE"
    assert [s.signal for s in sql.top_signals] == ["event:Webinar Attended", "click"]


GATED_RECYCLING = parse_rules(
    """
name: gated
thresholds: {mql: 50, sql: 100, hysteresis: 10}
engagement:
  pages: {pricing: 105, docs: 10}
qualification: {required: true, bant: [budget, need]}
recycle: {cold_days: 30}
"""
)


def test_qualifying_a_recycled_lead_needs_the_hysteresis_margin_too(make_event) -> None:
    """A rep's confirmation must not flap a recycled lead back to SQL at the plain SQL bar."""
    state = LeadState(stage=Stage.RECYCLED)
    state, _ = apply_event(
        state, make_event("page", page_category="pricing", at=at(0)), GATED_RECYCLING
    )
    assert state.score_at(at(0).timestamp(), GATED_RECYCLING) == pytest.approx(
        105
    )  # above 100, below 110
    t = at(0).timestamp()
    state, out = apply_rep_action(
        state, "lead-1", "q-1", "qualified", t, GATED_RECYCLING, bant=("budget", "need")
    )
    assert out == [] and state.stage == Stage.RECYCLED
    state, out = apply_event(
        state, make_event("page", page_category="docs", at=at(0)), GATED_RECYCLING
    )
    assert out is not None and out.to_stage == Stage.SQL  # 115: over the margin, BANT known
