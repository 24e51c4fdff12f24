"""A rep's outcome moves the lead as the rules' ``outcomes`` say, on both cores."""

from __future__ import annotations

from datetime import timedelta

import pytest

from baton_scorer import core
from baton_scorer.rules import Rules, RulesError, parse_rules
from baton_shared.dispositions import Disposition
from baton_shared.schemas import EventType, ReasonKind, Stage
from tests.scorer.conftest import T0, MakeEvent

DAY = 86_400.0
RULES = """
name: outcomes-test
thresholds: {mql: 50, sql: 100, hysteresis: 10}
engagement: {half_life_days: 14, pages: {pricing: 40}}
express_lanes: [Demo Requested]
recycle: {cold_days: 30}
outcomes:
  lost: {action: nurture, days: 10}
  dispositions:
    bad_timing: {action: nurture, days: 60}
    bad_data: {action: disqualify}
    wrong_team: {action: reroute}
"""


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(RULES, "outcomes.yaml")


def sql_lead(rules: Rules, make_event: MakeEvent) -> object:
    state = core.new_state()
    core.score_event(state, make_event(name="Demo Requested", lead_id="l1"), rules)
    assert state.stage == "sql"
    return state


def act(state: object, rules: Rules, kind: str, days: float = 0, **extra: object) -> list:
    at = T0.timestamp() + days * DAY
    return core.apply_rep_action(state, "l1", f"{kind}-{days}", kind, at, rules, **extra)[1]


def test_won_makes_a_customer_that_timers_and_scores_never_move(
    rules: Rules, make_event: MakeEvent
) -> None:
    state = sql_lead(rules, make_event)
    [won] = act(state, rules, "won", 1, reason="signed")
    assert (won.from_stage, won.to_stage, won.reason_kind) == ("sql", "customer", ReasonKind.WON)
    assert won.reason == "won: signed"
    assert core.expire(state, "l1", T0.timestamp() + 365 * DAY, rules) == []
    for i in range(3):
        later = T0 + timedelta(days=40 + i)
        page = make_event(EventType.PAGE, page_category="pricing", at=later, lead_id="l1")
        assert core.score_event(state, page, rules)[1] == []
    assert act(state, rules, "lost", 50) == []  # nothing leaves customer
    assert state.stage == Stage.CUSTOMER


@pytest.mark.parametrize(
    ("kind", "code", "stage", "why"),
    [
        ("rejected", None, "recycled", "rejected by rep: too small"),
        ("rejected", "bad_timing", "recycled", "rejected by rep (bad timing): too small"),
        ("rejected", "bad_data", "disqualified", "rejected by rep (bad data): too small"),
        ("rejected", "wrong_team", "sql", "rejected by rep (wrong team): too small"),
        ("lost", None, "recycled", "lost: too small; nurtured for 10 days"),
        ("lost", "bad_data", "disqualified", "lost (bad data): too small"),
    ],
)
def test_each_disposition_has_its_configured_effect(
    rules: Rules, make_event: MakeEvent, kind: str, code: str | None, stage: str, why: str
) -> None:
    state = sql_lead(rules, make_event)
    [moved] = act(state, rules, kind, 1, reason="too small", disposition=code)
    assert moved.to_stage == stage
    assert moved.reason.startswith(why)


def test_a_nurture_hold_stops_the_score_but_not_an_express_lane(
    rules: Rules, make_event: MakeEvent
) -> None:
    state = sql_lead(rules, make_event)
    act(state, rules, "rejected", 0, disposition="bad_timing")  # held for 60 days

    def pricing(day: float, n: int) -> list:
        out = []
        for i in range(n):
            at = T0 + timedelta(days=day, minutes=i)
            event = make_event(EventType.PAGE, page_category="pricing", at=at, lead_id="l1")
            out += core.score_event(state, event, rules)[1]
        return out

    assert pricing(30, 4) == []  # 160 points, over SQL + hysteresis, but held
    assert [t.to_stage for t in pricing(61, 4)] == ["sql"]  # the hold is over
    act(state, rules, "rejected", 62, disposition="bad_timing")
    demo = make_event(name="Demo Requested", at=T0 + timedelta(days=63), lead_id="l1")
    [express] = core.score_event(state, demo, rules)[1]
    assert (express.to_stage, express.express) == ("sql", True)


def test_the_default_rules_give_every_disposition_code_an_effect() -> None:
    from baton_scorer.rules import load_rules

    assert set(load_rules().outcomes.dispositions) == {d.value for d in Disposition}


def test_an_unknown_effect_is_refused_with_the_field_named() -> None:
    text = RULES.replace("action: reroute", "action: escalate")
    with pytest.raises(RulesError, match=r"outcomes\.dispositions\.wrong_team\.action"):
        parse_rules(text, "outcomes.yaml")
