"""The routing decision: account owner first, express → closers, rules → pools, territory
skills, availability in the rep's own time zone, capacity, and the queue (None)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baton_router.availability import (
    Calendar,
    InvalidCalendar,
    in_working_hours,
    is_available,
    parse_timezone,
    parse_working_hours,
)
from baton_router.routing import (
    Condition,
    LeadFacts,
    Pool,
    RepState,
    Rule,
    decide,
    lead_facts,
    normalise_domain,
    pools_considered,
)
from baton_router.strategies import Strategy
from baton_shared.schemas import Stage, Transition

# Monday 2025-07-07 09:30 UTC: 11:30 in Berlin (CEST), 05:30 in New York (EDT).
MON_0930_UTC = datetime(2025, 7, 7, 9, 30, tzinfo=UTC)
WEEKDAYS_9_TO_5 = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


def rid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def calendar(tz: str = "UTC", hours: dict | None = None, ooo=()) -> Calendar:
    return Calendar(tz, parse_working_hours(hours), tuple(ooo))


def lead(**attributes: object) -> LeadFacts:
    domain = attributes.pop("domain", None)
    express = bool(attributes.pop("express", False))
    return LeadFacts("lead-1", express, domain, dict(attributes))  # type: ignore[arg-type]


# -- availability ------------------------------------------------------------------------


def test_working_hours_are_read_in_the_reps_own_time_zone() -> None:
    berlin = calendar("Europe/Berlin", WEEKDAYS_9_TO_5)
    new_york = calendar("America/New_York", WEEKDAYS_9_TO_5)
    assert in_working_hours(berlin, MON_0930_UTC)  # 11:30 local
    assert not in_working_hours(new_york, MON_0930_UTC)  # 05:30 local
    assert in_working_hours(new_york, MON_0930_UTC + timedelta(hours=4))  # 09:30 local
    # Berlin 9-17 in winter (CET) is 08:00-16:00 UTC; in summer 07:00-15:00 UTC.
    assert in_working_hours(berlin, datetime(2025, 7, 7, 7, 0, tzinfo=UTC))
    assert not in_working_hours(berlin, datetime(2025, 1, 6, 7, 0, tzinfo=UTC))


def test_weekend_and_missing_days_are_off_and_no_template_is_always_on() -> None:
    saturday = datetime(2025, 7, 12, 12, 0, tzinfo=UTC)
    assert not in_working_hours(calendar("UTC", WEEKDAYS_9_TO_5), saturday)
    assert in_working_hours(calendar("UTC", None), saturday)


def test_a_night_shift_crosses_midnight() -> None:
    night = calendar("UTC", {"mon": ["22:00-02:00"]})
    assert in_working_hours(night, datetime(2025, 7, 7, 23, 0, tzinfo=UTC))  # Mon 23:00
    assert in_working_hours(night, datetime(2025, 7, 8, 1, 30, tzinfo=UTC))  # Tue 01:30
    assert not in_working_hours(night, datetime(2025, 7, 8, 2, 0, tzinfo=UTC))
    assert not in_working_hours(night, datetime(2025, 7, 7, 1, 0, tzinfo=UTC))  # Mon 01:00


def test_status_and_out_of_office_make_a_rep_unavailable() -> None:
    holiday = (MON_0930_UTC - timedelta(days=1), MON_0930_UTC + timedelta(days=6))
    assert is_available("online", calendar(), MON_0930_UTC)
    assert not is_available("away", calendar(), MON_0930_UTC)
    assert not is_available("offline", calendar(), MON_0930_UTC)
    assert not is_available("online", calendar(ooo=[holiday]), MON_0930_UTC)
    assert is_available("online", calendar(ooo=[holiday]), holiday[1])  # back exactly at end


@pytest.mark.parametrize(
    ("hours", "field"),
    [
        ({"monday": ["09:00-17:00"]}, "working_hours.monday"),
        ({"mon": ["9-5"]}, "working_hours.mon[0]"),
        ({"mon": ["09:00-17:00", "25:00-26:00"]}, "working_hours.mon[1]"),
        ({"tue": ["10:00-10:00"]}, "working_hours.tue[0]"),
    ],
)
def test_bad_working_hours_name_the_wrong_part(hours: dict, field: str) -> None:
    with pytest.raises(InvalidCalendar) as error:
        parse_working_hours(hours)
    assert error.value.field == field


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(InvalidCalendar, match="Mars/Olympus"):
        parse_timezone("Mars/Olympus")


# -- the decision ------------------------------------------------------------------------


def test_account_owner_gets_their_accounts_leads_before_anyone() -> None:
    reps = [RepState(rid(1)), RepState(rid(2), last_turn=None), RepState(rid(3))]
    decision = decide(lead(domain="acme.com"), reps, [], [], {"acme.com": rid(3)}, MON_0930_UTC)
    assert decision is not None
    assert (decision.rep_id, decision.strategy) == (rid(3), "account_owner")


def test_unavailable_account_owner_falls_through_to_the_pool() -> None:
    reps = [RepState(rid(1)), RepState(rid(3), status="away")]
    decision = decide(lead(domain="acme.com"), reps, [], [], {"acme.com": rid(3)}, MON_0930_UTC)
    assert decision is not None
    assert (decision.rep_id, decision.strategy) == (rid(1), "round_robin")


def test_express_leads_go_to_the_closers_and_others_do_not() -> None:
    reps = [RepState(rid(n)) for n in (1, 2, 3)]
    closers = Pool(rid(100), "closers", Strategy.ROUND_ROBIN, (rid(3),), express=True)
    express = decide(lead(express=True), reps, [closers], [], {}, MON_0930_UTC)
    normal = decide(lead(), reps, [closers], [], {}, MON_0930_UTC)
    assert express is not None and normal is not None
    assert (express.rep_id, express.pool_name) == (rid(3), "closers")
    assert normal.pool_name == "default"


def test_express_lead_does_not_wait_when_every_closer_is_away() -> None:
    reps = [RepState(rid(1)), RepState(rid(3), status="offline")]
    closers = Pool(rid(100), "closers", Strategy.ROUND_ROBIN, (rid(3),), express=True)
    decision = decide(lead(express=True), reps, [closers], [], {}, MON_0930_UTC)
    assert decision is not None and decision.rep_id == rid(1)


def test_first_matching_rule_picks_the_pool_and_its_strategy() -> None:
    reps = [RepState(rid(n), open_leads=n) for n in (1, 2, 3, 4)]
    enterprise = Pool(rid(100), "enterprise", Strategy.LEAST_LOADED, (rid(3), rid(4)))
    emea = Pool(rid(101), "emea", Strategy.ROUND_ROBIN, (rid(1),))
    rules = [
        Rule(rid(200), emea.pool_id, (Condition("region", "eq", "EMEA"),)),
        Rule(rid(201), enterprise.pool_id, (Condition("company_size", "gte", 1000),)),
    ]
    big_us = decide(
        lead(region="na", company_size=5000), reps, [enterprise, emea], rules, {}, MON_0930_UTC
    )
    big_emea = decide(
        lead(region="emea", company_size=5000), reps, [enterprise, emea], rules, {}, MON_0930_UTC
    )
    small = decide(
        lead(region="na", company_size=10), reps, [enterprise, emea], rules, {}, MON_0930_UTC
    )
    assert big_us is not None and big_emea is not None and small is not None
    assert (big_us.rep_id, big_us.strategy, big_us.pool_name) == (
        rid(3),
        "least_loaded",
        "enterprise",
    )
    assert (big_emea.pool_name, big_emea.rep_id) == ("emea", rid(1))  # case-insensitive
    assert small.pool_name == "default"


def test_the_pools_a_lead_may_go_to_are_its_express_pools_and_first_matching_rules() -> None:
    closers = Pool(rid(100), "closers", Strategy.ROUND_ROBIN, (rid(3),), express=True)
    emea = Pool(rid(101), "emea", Strategy.ROUND_ROBIN, (rid(1),))
    na = Pool(rid(102), "na", Strategy.ROUND_ROBIN, (rid(2),))
    rules = [
        Rule(rid(200), emea.pool_id, (Condition("region", "eq", "emea"),)),
        Rule(rid(201), na.pool_id, (Condition("region", "in", ["na", "emea"]),)),
    ]
    pools = [closers, emea, na]
    assert pools_considered(lead(region="emea"), pools, rules) == ({emea.pool_id}, rules[0])
    assert pools_considered(lead(region="na", express=True), pools, rules) == (
        {closers.pool_id, na.pool_id},
        rules[1],
    )
    # No rule matches: the default pool, every rep (and the closers first when express).
    assert pools_considered(lead(region="apac"), pools, rules) == (set(), None)
    assert pools_considered(lead(express=True), pools, rules) == ({closers.pool_id}, None)


def test_a_matched_pool_with_nobody_available_queues_the_lead() -> None:
    reps = [RepState(rid(1)), RepState(rid(2), status="away")]
    emea = Pool(rid(101), "emea", Strategy.ROUND_ROBIN, (rid(2),))
    rules = [Rule(rid(200), emea.pool_id, (Condition("region", "eq", "emea"),))]
    assert decide(lead(region="emea"), reps, [emea], rules, {}, MON_0930_UTC) is None


def test_territory_skills_keep_leads_with_reps_who_cover_them() -> None:
    reps = [
        RepState(rid(1), skills={"regions": ["emea"], "languages": ["de"]}),
        RepState(rid(2), skills={"regions": ["na"]}),
        RepState(rid(3), skills={}),  # covers anything
    ]
    decision = decide(lead(region="NA"), reps[:2], [], [], {}, MON_0930_UTC)
    assert decision is not None and decision.rep_id == rid(2)
    german = decide(lead(region="emea", language="de"), reps[:2], [], [], {}, MON_0930_UTC)
    assert german is not None and german.rep_id == rid(1)
    assert decide(lead(region="apac"), reps[:2], [], [], {}, MON_0930_UTC) is None
    anyone = decide(lead(region="apac"), reps, [], [], {}, MON_0930_UTC)
    assert anyone is not None and anyone.rep_id == rid(3)


def test_reps_at_capacity_or_with_a_disabled_webhook_or_excluded_get_nothing() -> None:
    reps = [
        RepState(rid(1), capacity=2, open_leads=2),
        RepState(rid(2), webhook_disabled=True),
        RepState(rid(3)),
        RepState(rid(4), capacity=0),
    ]
    decision = decide(lead(), reps, [], [], {}, MON_0930_UTC)
    assert decision is not None and decision.rep_id == rid(3)
    assert decide(lead(), reps, [], [], {}, MON_0930_UTC, exclude=frozenset({rid(3)})) is None


def test_a_rep_off_shift_in_their_time_zone_is_skipped() -> None:
    reps = [
        RepState(rid(1), calendar=calendar("America/New_York", WEEKDAYS_9_TO_5), last_turn=None),
        RepState(rid(2), calendar=calendar("Europe/Berlin", WEEKDAYS_9_TO_5), last_turn=50),
    ]
    decision = decide(lead(), reps, [], [], {}, MON_0930_UTC)
    assert decision is not None and decision.rep_id == rid(2)


def test_weighted_pool_returns_its_new_state() -> None:
    reps = [RepState(rid(1), weight=3), RepState(rid(2), weight=1)]
    pool = Pool(rid(100), "w", Strategy.WEIGHTED, (rid(1), rid(2)))
    rules = [Rule(rid(200), pool.pool_id, (Condition("score", "gte", 0),))]
    decision = decide(lead(score=50), reps, [pool], rules, {}, MON_0930_UTC)
    assert decision is not None
    assert decision.rep_id == rid(1)
    assert decision.pool_current == {rid(1): -1.0, rid(2): 1.0}


@settings(max_examples=60, deadline=None, database=None)
@given(
    capacities=st.lists(st.none() | st.integers(0, 4), min_size=1, max_size=5),
    leads=st.integers(0, 30),
)
def test_deciding_lead_after_lead_never_exceeds_any_capacity(
    capacities: list[int | None], leads: int
) -> None:
    load = [0] * len(capacities)
    turn = 0
    last: dict[int, int] = {}
    for _ in range(leads):
        reps = [
            RepState(rid(i + 1), capacity=cap, open_leads=load[i], last_turn=last.get(i))
            for i, cap in enumerate(capacities)
        ]
        decision = decide(lead(), reps, [], [], {}, MON_0930_UTC)
        if decision is None:
            assert all(cap is not None and load[i] >= cap for i, cap in enumerate(capacities))
            continue
        i = decision.rep_id.int - 1
        load[i] += 1
        turn += 1
        last[i] = turn
    assert all(cap is None or load[i] <= cap for i, cap in enumerate(capacities))


def test_conditions_compare_numbers_lists_and_missing_fields() -> None:
    facts = lead(score=120, industry="SaaS", domain="acme.com")
    assert Condition("score", "gt", 100).matches(facts)
    assert not Condition("score", "lt", 100).matches(facts)
    assert Condition("industry", "in", ["saas", "fintech"]).matches(facts)
    assert Condition("domain", "eq", "ACME.com").matches(facts)
    assert Condition("country", "exists", False).matches(facts)
    assert not Condition("country", "eq", "DE").matches(facts)
    assert Condition("country", "ne", "DE").matches(facts)
    assert not Condition("industry", "gt", 5).matches(facts)  # text vs number: no match


def test_lead_facts_take_the_domain_from_an_email_lead_id() -> None:
    transition = Transition(
        transition_id="t1",
        lead_id="Jane@Acme.COM",
        from_stage=Stage.MQL,
        to_stage=Stage.SQL,
        score=120,
        fit=40,
        engagement=80,
        reason="r",
        express=True,
        trigger_event_id="e1",
        trigger_event="Demo Requested",
        occurred_at=MON_0930_UTC,
        rules_version="v",
    )
    facts = lead_facts(transition)
    assert (facts.domain, facts.express, facts.get("score")) == ("acme.com", True, 120)
    assert normalise_domain("https://www.Acme.com/about") == "acme.com"
