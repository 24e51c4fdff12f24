"""The replay core: the scorer's pure core fed like the live scorer, then compared."""

from __future__ import annotations

import re
from datetime import timedelta
from importlib.resources import files
from xml.etree import ElementTree

from baton_analytics.compare import Outcomes, compare
from baton_analytics.replay import replay_all
from baton_analytics.report import render_html, render_text
from baton_scorer.lifecycle import LeadState, score_event
from baton_scorer.rules import Rules, parse_rules
from baton_shared.schemas import ReasonKind, Stage
from tests.analytics.conftest import T0, MakeActivity, MakeEvent

DEFAULT_TEXT = files("baton_scorer").joinpath("default_rules.yaml").read_text()


def candidate_rules(sql: int = 60) -> Rules:
    text = DEFAULT_TEXT.replace("  sql: 100\n", f"  sql: {sql}\n", 1)
    assert text != DEFAULT_TEXT
    return parse_rules(text, "candidate.yaml")


def test_replay_gives_the_transitions_the_scorer_core_gives(
    rules: Rules, make_event: MakeEvent
) -> None:
    events = [
        make_event("a", type="page", page_category="pricing", at=T0),
        make_event("b", "Demo Requested", at=T0 + timedelta(minutes=1)),
        make_event("a", type="page", page_category="product", at=T0 + timedelta(minutes=2)),
        make_event("a", "Webinar Attended", at=T0 + timedelta(minutes=3)),
    ]
    states: dict[str, LeadState] = {}
    expected = []
    for e in events:
        _, ts = score_event(states.setdefault(e.lead_id, LeadState()), e, rules)
        expected += ts

    result = replay_all(list(events), rules, end_at=None)

    assert result.transitions == expected
    assert [(t.lead_id, t.to_stage) for t in result.transitions] == [
        ("b", Stage.SQL),
        ("a", Stage.MQL),
    ]
    assert result.transitions[0].reason_kind == ReasonKind.EXPRESS_LANE
    assert all(t.rules_version == rules.version for t in result.transitions)


def test_a_duplicate_event_id_scores_once(rules: Rules, make_event: MakeEvent) -> None:
    visit = make_event("a", type="page", page_category="pricing", event_id="m-1")
    again = make_event("a", type="page", page_category="pricing", event_id="m-1")

    result = replay_all([visit, again], rules, end_at=None)

    assert result.duplicates == 1
    assert result.transitions == []  # 40 points, not 80: no MQL


def test_anonymous_history_counts_once_an_identify_links_it(
    rules: Rules, make_event: MakeEvent
) -> None:
    anonymous = [
        make_event("anon-1", type="page", page_category="pricing", anonymous_id="anon-1"),
        make_event("anon-1", type="page", page_category="product", anonymous_id="anon-1"),
    ]
    identify = make_event(
        "user-1", type="identify", anonymous_id="anon-1", at=T0 + timedelta(minutes=5)
    )

    held = replay_all(list(anonymous), rules, end_at=None)
    linked = replay_all([*anonymous, identify], rules, end_at=None)

    assert held.transitions == [] and held.held_anonymous == 2
    assert [(t.lead_id, t.to_stage) for t in linked.transitions] == [("user-1", Stage.MQL)]


def test_a_rep_rejection_sends_the_sql_back_to_nurture(
    rules: Rules, make_event: MakeEvent, make_activity: MakeActivity
) -> None:
    demo = make_event("a", "Demo Requested")
    rejected = make_activity("a", "rejected", at=T0 + timedelta(hours=1), reason="no budget")
    contacted = make_activity("b", "contacted")

    result = replay_all([demo, contacted, rejected], rules, end_at=None)

    assert [t.to_stage for t in result.transitions] == [Stage.SQL, Stage.RECYCLED]
    assert result.transitions[-1].reason == "rejected by rep: no budget"


def test_recycle_timers_fire_by_the_end_of_the_range_only(
    rules: Rules, make_event: MakeEvent
) -> None:
    demo = make_event("a", "Demo Requested")
    soon = (T0 + timedelta(days=1)).timestamp()
    later = (T0 + timedelta(days=60)).timestamp()

    assert [t.to_stage for t in replay_all([demo], rules, soon).transitions] == [Stage.SQL]
    recycled = replay_all([demo], rules, later).transitions
    assert [t.to_stage for t in recycled] == [Stage.SQL, Stage.RECYCLED]
    assert recycled[-1].occurred_at.timestamp() <= later
    assert replay_all([demo], rules, None).transitions[-1].to_stage == Stage.SQL


def test_compare_lists_leads_a_lower_sql_threshold_makes_sql(
    rules: Rules, make_event: MakeEvent, make_activity: MakeActivity
) -> None:
    history = [
        make_event("warm", type="page", page_category="pricing", at=T0),
        make_event("warm", "Webinar Attended", at=T0 + timedelta(hours=2)),
        make_event("cold", type="page", page_category="blog", at=T0),
        make_event("hot", "Demo Requested", at=T0),
    ]
    current = replay_all(list(history), rules, None)
    candidate = replay_all(list(history), candidate_rules(sql=55), None)

    outcomes = Outcomes.of([make_activity("warm", "accepted"), make_activity("cold", "rejected")])
    c = compare(current, candidate, outcomes)

    assert (c.current.sql_leads, c.candidate.sql_leads) == (1, 2)
    assert [(ch.lead_id, ch.summary) for ch in c.changes] == [("warm", "now SQL")]
    assert c.candidate.hours_to_sql == [0.0, 2.0]
    accepted = next(r for r in c.outcomes if r.outcome == "accepted")
    assert (accepted.leads, accepted.sql_current, accepted.sql_candidate) == (1, 0, 1)
    text = render_text(c)
    assert "SQL leads             1 →        2   +1 (+100.0%)" in text
    assert "now SQL" in text


def test_the_html_report_is_self_contained_with_charts(rules: Rules, make_event: MakeEvent) -> None:
    history = [
        make_event("warm<b>", type="page", page_category="pricing"),
        make_event("warm<b>", "Webinar Attended", at=T0 + timedelta(hours=2)),
    ]
    c = compare(
        replay_all(list(history), rules, None),
        replay_all(list(history), candidate_rules(sql=55), None),
        Outcomes(),
    )

    html = render_html(c, "the test range")

    charts = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(charts) >= 3
    for chart in charts:
        assert ElementTree.fromstring(chart).tag == "svg"  # well-formed, renders offline
    assert "<script" not in html and "http://" not in html.replace("http://www.w3", "")
    assert "https://" not in html
    assert "warm&lt;b&gt;" in html and "warm<b>" not in html
    assert "now SQL" in html


def test_outcomes_keep_each_leads_latest_disposition_and_latest_close(
    make_activity: MakeActivity,
) -> None:
    later = T0 + timedelta(days=3)
    outcomes = Outcomes.of(
        [
            make_activity("won-deal", "won", at=later),
            make_activity("won-deal", "accepted"),  # fed out of order: still accepted, won
            make_activity("second-look", "rejected"),
            make_activity("second-look", "accepted", at=later),
            make_activity("closed-lost", "accepted"),
            make_activity("closed-lost", "won"),
            make_activity("closed-lost", "lost", at=later),
            make_activity("working", "contacted"),
            make_activity("working", "qualified"),
        ]
    )

    assert outcomes.leads("accepted") == ["closed-lost", "second-look", "won-deal"]
    assert outcomes.leads("rejected") == []
    assert outcomes.leads("won") == ["won-deal"]
    assert outcomes.leads("lost") == ["closed-lost"]


def test_compare_shows_how_won_and_lost_leads_would_have_scored(
    rules: Rules, make_event: MakeEvent, make_activity: MakeActivity
) -> None:
    history = [
        make_event("warm", type="page", page_category="pricing", at=T0),
        make_event("warm", "Webinar Attended", at=T0 + timedelta(hours=2)),
        make_event("cold", type="page", page_category="blog", at=T0),
    ]
    outcomes = Outcomes.of(
        [
            make_activity("warm", "won", at=T0 + timedelta(days=9)),
            make_activity("cold", "lost", at=T0 + timedelta(days=9)),
        ]
    )

    c = compare(
        replay_all(list(history), rules, None),
        replay_all(list(history), candidate_rules(sql=55), None),
        outcomes,
    )

    rows = {r.outcome: (r.leads, r.sql_current, r.sql_candidate) for r in c.outcomes}
    assert rows == {"won": (1, 0, 1), "lost": (1, 0, 0)}
    won = next(r for r in c.outcomes if r.outcome == "won")
    assert won.median_score_current == won.median_score_candidate  # same points, decayed
    assert won.median_score_current is not None and 55 < won.median_score_current < 60
    text = render_text(c)
    assert "won deals: 1 leads; SQL under current 0, under candidate 1" in text
    assert "lost deals: 1 leads; SQL under current 0, under candidate 0" in text
    html = render_html(c, "the test range")
    assert "<td>won deals</td><td>1</td><td>0</td><td>1</td>" in html
    assert "Median final score of the leads with each outcome" in html


def test_a_window_tells_a_lead_qualified_before_it_from_one_never_qualified(
    rules: Rules, make_event: MakeEvent
) -> None:
    history = [
        make_event("warm", type="page", page_category="pricing", at=T0),
        make_event("warm", "Webinar Attended", at=T0),  # 60: SQL at once with sql 55
        make_event("warm", type="page", page_category="demo", at=T0 + timedelta(days=1)),
        make_event("warm", type="page", page_category="product", at=T0 + timedelta(days=1)),
    ]
    since = T0 + timedelta(hours=12)

    c = compare(
        replay_all(list(history), rules, None),
        replay_all(list(history), candidate_rules(sql=55), None),
        Outcomes(),
        since_at=since.timestamp(),
    )

    assert (c.current.sql_leads, c.candidate.sql_leads) == (1, 0)  # SQL in the window
    [change] = c.changes
    assert change.summary == "SQL earlier (before the window)"
    assert (change.candidate.start_stage, change.candidate.final_stage) == ("sql", "sql")
    assert c.candidate.transitions == {}  # the candidate's SQL came before the window
