"""Accounts, pure: leads roll up to their company; the account's engagement is exactly the
sum of its leads' decayed engagement; thresholds move the account, once per crossing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baton_scorer import accounts, core, lifecycle
from baton_scorer.accounts_stream import AccountFeed
from baton_scorer.lookup import BadKey
from baton_scorer.rules import RulesError, parse_rules
from baton_shared.accounts import account_of
from baton_shared.schemas import AccountStage, EventType
from tests.scorer.conftest import T0, MakeEvent

RULES = parse_rules(
    """
name: accounts-test
thresholds: {mql: 50, sql: 100}
engagement:
  half_life_days: 14
  groups: {intent: {half_life_days: 3}}
  pages: {pricing: 30, docs: 10}
  rules:
    - {id: webinar, match: {event: Webinar Attended}, points: 25, group: intent}
    - {id: unsubscribed, match: {event: Unsubscribed}, points: -20}
accounts:
  thresholds: {engaged: 60, sales_ready: 150}
  fit:
    industry: {SaaS: 15}
    employees: [{min: 200, points: 10}, {max: 199, points: 2}]
"""
)
HOUR = 3600.0


def scored(make_event: MakeEvent, lead_id: str, kinds: list[tuple[str, float]]) -> object:
    """A lead's state after page/track events ``(what, hours after T0)``."""
    state = lifecycle.LeadState()
    for what, hours in kinds:
        at = T0 + timedelta(hours=hours)
        if what in ("pricing", "docs"):
            event = make_event(EventType.PAGE, lead_id=lead_id, page_category=what, at=at)
        else:
            event = make_event(EventType.TRACK, lead_id=lead_id, name=what, at=at)
        lifecycle.score_event(state, event, RULES)
    return state


def roll_up(states: dict[str, object], account: str = "acme.com") -> accounts.AccountState:
    account_state = accounts.AccountState()
    updates = [accounts.member_update(lead, account, 1, s) for lead, s in states.items()]
    accounts.apply_updates(account, account_state, updates, RULES)
    return account_state


KINDS = st.sampled_from(["pricing", "docs", "Webinar Attended", "Unsubscribed", "Other"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.tuples(KINDS, st.floats(0, 24 * 90)), max_size=12), min_size=1,
             max_size=6),
    st.floats(0, 24 * 400),
)  # fmt: skip
def test_account_engagement_is_the_exact_sum_of_its_leads_decayed_engagement(
    make_event: MakeEvent, histories: list[list[tuple[str, float]]], later_hours: float
) -> None:
    states = {f"lead-{i}": scored(make_event, f"lead-{i}", h) for i, h in enumerate(histories)}
    account = roll_up(states)
    t = T0.timestamp() + later_hours * HOUR
    expected = sum(s.engagement_at(t, RULES) for s in states.values())  # type: ignore[attr-defined]
    assert account.engagement_at(t, RULES) == pytest.approx(expected, rel=1e-12, abs=1e-9)
    # The same rolled up from stored states (a restart) and in any order.
    again = accounts.AccountState.from_bytes(account.to_bytes())
    assert again.engagement_at(t, RULES) == pytest.approx(expected, rel=1e-12, abs=1e-9)
    reordered = roll_up(dict(reversed(list(states.items()))))
    assert reordered.engagement_at(t, RULES) == pytest.approx(expected, rel=1e-12, abs=1e-9)


def test_two_leads_below_mql_together_make_their_account_engaged(make_event: MakeEvent) -> None:
    ada = scored(make_event, "ada", [("pricing", 0), ("docs", 1)])  # 40: below MQL (50)
    bob = scored(make_event, "bob", [("pricing", 2)])  # 30
    assert ada.stage == bob.stage == "new"  # type: ignore[attr-defined]
    account = accounts.AccountState()
    first = accounts.apply_updates(
        "acme.com", account, [accounts.member_update("ada", "acme.com", 1, ada)], RULES
    )
    assert first == [] and account.stage is AccountStage.COLD
    update = accounts.member_update("bob", "acme.com", 1, bob)
    (moved,) = accounts.apply_updates("acme.com", account, [update], RULES)
    assert (moved.from_stage, moved.to_stage) == (AccountStage.COLD, AccountStage.ENGAGED)
    assert [lead.lead_id for lead in moved.leads] == ["ada", "bob"]
    assert moved.engagement == pytest.approx(70, abs=0.2)  # ada decayed for two hours
    assert moved.score == moved.fit + moved.engagement
    assert moved.trigger_lead_id == "bob" and moved.rules_version == RULES.version
    assert moved.occurred_at == T0 + timedelta(hours=2)
    # The same update again (a replay after a crash) changes nothing.
    assert accounts.apply_updates("acme.com", account, [update], RULES) == []
    # Processed from scratch again, it makes the same transition (the same id).
    fresh = roll_up({"ada": ada, "bob": bob})
    assert fresh.stage is AccountStage.ENGAGED


def test_an_older_update_never_replaces_a_newer_one_and_a_lead_that_left_counts_nothing(
    make_event: MakeEvent,
) -> None:
    early = scored(make_event, "ada", [("pricing", 0)])
    late = scored(make_event, "ada", [("pricing", 0), ("pricing", 1), ("docs", 1)])
    account = accounts.AccountState()
    newer = accounts.member_update("ada", "acme.com", 2, late)
    older = accounts.member_update("ada", "acme.com", 1, early)
    transitions = accounts.apply_updates("acme.com", account, [newer, older], RULES)
    assert [t.to_stage for t in transitions] == [AccountStage.ENGAGED]
    assert account.members["ada"].seq == 2
    left = accounts.left_update("ada", "acme.com", 3)
    (cooled,) = accounts.apply_updates("acme.com", account, [left], RULES)
    assert cooled.to_stage is AccountStage.COLD and account.members == {}


def test_account_fit_comes_from_the_companys_traits(make_event: MakeEvent) -> None:
    state = lifecycle.LeadState()
    group = make_event(
        EventType.GROUP,
        lead_id="ada",
        group_id="g-1",
        traits={"company": {"id": "g-1", "industry": "saas", "employees": "1,200"}},
    )
    lifecycle.score_event(state, group, RULES)
    account = roll_up({"ada": state}, "g-1")
    assert account.traits() == {"id": "g-1", "industry": "saas", "employees": "1,200"}
    assert account.fit(RULES) == 25


@pytest.mark.parametrize("kind", ["python", "native"])
def test_both_cores_take_a_group_call_as_a_traits_update(make_event: MakeEvent, kind: str) -> None:
    if kind == "native":
        if core._native is None:
            pytest.skip("baton_scorer_native is not built")
        state, score = core._native.LeadState(), core.native_core(RULES).score_event
    else:
        state = lifecycle.LeadState()

        def score(state: object, event: object, at: None) -> object:
            return lifecycle.score_event(state, event, RULES)  # type: ignore[arg-type]

    identify = make_event(EventType.IDENTIFY, lead_id="ada", traits={"title": "CTO"})
    group = make_event(
        EventType.GROUP, lead_id="ada", group_id="g-7", traits={"company": {"id": "g-7"}}
    )
    for event in (identify, group):
        score(state, event, None)
    assert state.traits == {"title": "CTO", "company": {"id": "g-7"}}
    assert account_of(state.traits, state.email) == "g-7"


def test_the_feed_tells_the_old_account_a_lead_left_and_numbers_every_update(
    make_event: MakeEvent,
) -> None:
    feed = AccountFeed("accounts")
    state = scored(make_event, "ada", [("pricing", 0)])
    state.email = "ada@acme.com"  # type: ignore[attr-defined]
    states = {"ada": state}
    ((key, value),) = feed.updates(["ada"], states, RULES)
    assert key == b"acme.com" and accounts.decode_update(value)[:3] == ("ada", "acme.com", 1)
    state.traits = {"company": {"id": "g-9"}}  # type: ignore[attr-defined]
    left, joined = feed.updates(["ada"], states, RULES)
    assert accounts.decode_update(left[1]) == ("ada", "acme.com", 2, None)
    assert joined[0] == b"g-9"
    assert feed.stored("ada") == {"id": "g-9", "seq": 2}
    # A lead without an account, never in one, sends nothing; rules without accounts: none.
    assert feed.updates(["bob"], {"bob": lifecycle.LeadState()}, RULES) == []
    assert feed.updates(["ada"], states, parse_rules("name: plain")) == []


def test_account_rules_are_validated_with_the_line_and_field() -> None:
    with pytest.raises(RulesError, match=r"line 3: accounts.thresholds: .*sales_ready"):
        parse_rules("name: x\naccounts:\n  thresholds: {engaged: 100, sales_ready: 50}\n")
    with pytest.raises(RulesError, match=r"accounts.fit.employees\[0\].points"):
        parse_rules("name: x\naccounts:\n  fit:\n    employees: [{min: 1, points: lots}]\n")
    with pytest.raises(RulesError, match=r"accounts.thresholds.enaged"):
        parse_rules("name: x\naccounts:\n  thresholds: {enaged: 10}\n")


def test_an_account_id_is_looked_up_as_given_then_as_a_domain() -> None:
    assert accounts.account_keys("https://www.Acme.com/") == ["https://www.Acme.com/", "acme.com"]
    assert accounts.account_keys("g-1") == ["g-1"]
    for bad, rule in [
        (" ", "missing"),
        ("x" * 257, "string_too_long"),
        ("a\nb", "control_character"),
    ]:
        with pytest.raises(BadKey) as err:
            accounts.account_keys(bad)
        assert err.value.rule == rule


def test_a_group_calls_company_size_and_industry_count_for_the_leads_fit(
    make_event: MakeEvent,
) -> None:
    rules = parse_rules(
        "name: fit\nfit:\n  company_size: [{min: 100, points: 10}]\n  industry: {saas: 5}\n"
    )
    state = lifecycle.LeadState()
    group = make_event(
        EventType.GROUP, group_id="g-1", traits={"company": {"employees": 250, "industry": "SaaS"}}
    )
    lifecycle.score_event(state, group, rules)
    assert state.fit == 15
    # A top-level trait of the person's own wins over the company object.
    lifecycle.score_event(state, make_event(EventType.IDENTIFY, traits={"employees": 5}), rules)
    assert state.fit == 5


UPDATES = st.lists(
    st.tuples(
        st.sampled_from(["ada", "bob", "cy", "dee"]),
        st.one_of(
            st.none(),  # the lead leaves
            st.tuples(
                st.dictionaries(
                    st.sampled_from(["default", "intent"]),
                    st.sampled_from([0.0, 10.0, 30.0, 59.999999, 60.0, 90.0, -20.0]),
                    min_size=1,
                ),
                st.floats(0, 30 * 86_400),
            ),
        ),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(UPDATES)
def test_after_every_update_the_account_is_in_the_stage_its_exact_score_gives(
    updates: list,
) -> None:
    account = accounts.AccountState()
    origin = T0.timestamp()
    for seq, (lead, change) in enumerate(updates, start=1):
        if change is None:
            value = accounts.left_update(lead, "acme.com", seq)
        else:
            groups, late_s = change
            state = lifecycle.LeadState(groups=groups, origin=origin, watermark=origin + late_s)
            value = accounts.member_update(lead, "acme.com", seq, state)
        accounts.apply_updates("acme.com", account, [value], RULES)
        if account.watermark is not None:
            exact = account.fit(RULES) + sum(account.points_at(account.watermark, RULES).values())
            assert account.stage is accounts.stage_for(exact, RULES)
