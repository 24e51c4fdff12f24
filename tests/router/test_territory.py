"""Territory, segment, industry, language and email-domain routing on the lead's traits,
rep skills over them, and rule definitions checked before they are stored."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baton_router.routing import (
    FIELDS,
    Condition,
    InvalidCondition,
    Pool,
    RepState,
    Rule,
    check_condition,
    decide,
    lead_facts,
)
from baton_router.strategies import Strategy
from baton_router.territory import country_code, language_code, segment_for, territory
from baton_shared.schemas import Stage, Transition

NOW = datetime(2025, 7, 7, 9, 30, tzinfo=UTC)


def rid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def sql(traits: dict | None = None, email: str | None = None, lead_id: str = "lead-1"):
    return Transition(
        transition_id=uuid.uuid4().hex,
        lead_id=lead_id,
        from_stage=Stage.MQL,
        to_stage=Stage.SQL,
        score=110,
        fit=40,
        engagement=70,
        reason="threshold",
        trigger_event_id="evt-1",
        trigger_event="Pricing Viewed",
        occurred_at=NOW,
        rules_version="test",
        email=email,
        traits=traits or {},
    )


# -- what the traits say -----------------------------------------------------------------


def test_country_names_and_codes_become_one_code_and_give_the_region() -> None:
    assert country_code("Germany") == country_code("DE") == country_code(" de ") == "de"
    assert country_code("UK") == country_code("United Kingdom") == "gb"
    assert territory({"country": "Deutschland"})["region"] == "emea"
    assert territory({"country": "United States"})["region"] == "na"
    assert territory({"country": "Brazil"})["region"] == "latam"
    assert territory({"country": "JP"})["region"] == "apac"
    # The lead's own region trait wins over the one derived from its country.
    assert territory({"country": "de", "region": "DACH"})["region"] == "dach"


def test_company_size_comes_from_any_usual_trait_and_gives_the_segment() -> None:
    assert territory({"employees": 40})["segment"] == "smb"
    assert territory({"company_size": "1,200"})["segment"] == "enterprise"
    assert territory({"company": {"name": "Acme", "employee_count": 250}}) | {} == {
        "company_size": 250.0,
        "employees": 250.0,
        "segment": "mid_market",
        "company": "acme",
    }
    assert territory({"employees": "51-200"})["company_size"] == 200.0
    assert territory({"employees": 5000, "segment": "Strategic"})["segment"] == "strategic"
    assert [segment_for(n) for n in (99, 100, 999, 1000)] == [
        "smb",
        "mid_market",
        "mid_market",
        "enterprise",
    ]


@pytest.mark.parametrize("size", ["nan", "inf", "-Infinity", float("nan"), float("inf")])
def test_a_size_that_is_no_number_gives_no_segment(size: object) -> None:
    """``"nan"`` parses as a float and compares false to everything: it once made a lead
    enterprise."""
    assert "segment" not in territory({"employees": size})
    assert "company_size" not in territory({"employees": size})


def test_language_industry_and_email_domain_are_canonical() -> None:
    facts = territory({"locale": "de_AT", "industry": "SaaS "}, email="Ana@Example.DE")
    assert (facts["language"], facts["industry"], facts["email_domain"]) == (
        "de",
        "saas",
        "example.de",
    )
    assert language_code("pt-BR") == "pt"


def test_lead_facts_read_the_transitions_traits_and_email() -> None:
    facts = lead_facts(
        sql({"country": "France", "employees": 3000, "industry": "Fintech"}, "jo@acme.fr")
    )
    assert facts.get("country") == "fr"
    assert facts.get("region") == "emea"
    assert facts.get("segment") == "enterprise"
    assert facts.get("email_domain") == "acme.fr"
    assert facts.domain == "acme.fr"  # account ownership uses it
    assert facts.get("traits.employees") == 3000  # the raw trait, as sent


@given(
    st.dictionaries(
        st.text(max_size=12), st.one_of(st.none(), st.integers(), st.text()), max_size=8
    )
)
def test_any_traits_give_facts_without_raising(traits: dict) -> None:
    facts = lead_facts(sql(traits))
    assert facts.lead_id == "lead-1"


# -- rules on those facts ------------------------------------------------------------------


def test_country_rule_sends_emea_leads_to_the_emea_pool_whatever_the_spelling() -> None:
    reps = [RepState(rid(1)), RepState(rid(2))]
    emea = Pool(rid(100), "emea", Strategy.ROUND_ROBIN, (rid(2),))
    rules = [Rule(rid(200), emea.pool_id, (Condition("country", "in", ["Germany", "FR"]),))]
    for spelling in ("DE", "germany", "Deutschland", "France"):
        decision = decide(lead_facts(sql({"country": spelling})), reps, [emea], rules, {}, NOW)
        assert decision is not None and decision.pool_name == "emea", spelling
    us = decide(lead_facts(sql({"country": "US"})), reps, [emea], rules, {}, NOW)
    assert us is not None and us.pool_name == "default"


def test_company_size_range_picks_the_segment_pool_and_industry_and_domain_rules_match() -> None:
    reps = [RepState(rid(n)) for n in (1, 2, 3, 4)]
    mid = Pool(rid(100), "mid-market", Strategy.ROUND_ROBIN, (rid(2),))
    fin = Pool(rid(101), "fintech", Strategy.ROUND_ROBIN, (rid(3),))
    gov = Pool(rid(102), "public-sector", Strategy.ROUND_ROBIN, (rid(4),))
    rules = [
        Rule(rid(200), gov.pool_id, (Condition("email_domain", "ends_with", ".gov"),)),
        Rule(rid(201), fin.pool_id, (Condition("industry", "eq", "FinTech"),)),
        Rule(rid(202), mid.pool_id, (Condition("company_size", "between", [100, 999]),)),
    ]
    pools = [mid, fin, gov]

    def pool_of(traits: dict, email: str | None = None) -> str:
        decision = decide(lead_facts(sql(traits, email)), reps, pools, rules, {}, NOW)
        assert decision is not None
        return decision.pool_name

    assert pool_of({"employees": 300}) == "mid-market"
    assert pool_of({"employees": 3000}) == "default"
    assert pool_of({"employees": 300, "industry": "fintech"}) == "fintech"
    assert pool_of({"employees": 300}, "cio@agency.gov") == "public-sector"


def test_rep_skills_on_region_country_segment_and_language_pick_who_covers_the_lead() -> None:
    reps = [
        RepState(rid(1), skills={"regions": ["emea"], "languages": ["de"]}),
        RepState(rid(2), skills={"regions": ["emea"], "languages": ["fr"]}),
        RepState(rid(3), skills={"countries": ["us", "ca"], "segments": ["enterprise"]}),
    ]

    def rep_for(traits: dict) -> uuid.UUID | None:
        decision = decide(lead_facts(sql(traits)), reps, [], [], {}, NOW)
        return decision.rep_id if decision else None

    assert rep_for({"country": "Austria", "language": "de-AT"}) == rid(1)
    assert rep_for({"country": "Belgium", "locale": "fr_BE"}) == rid(2)
    assert rep_for({"country": "Canada", "employees": 20_000}) == rid(3)
    assert rep_for({"country": "Canada", "employees": 20}) is None  # nobody covers SMB in CA
    assert rep_for({"country": "Japan"}) is None  # nobody covers APAC: queued


def test_rule_on_a_raw_trait() -> None:
    reps = [RepState(rid(1)), RepState(rid(2))]
    partners = Pool(rid(100), "partners", Strategy.ROUND_ROBIN, (rid(2),))
    rules = [Rule(rid(200), partners.pool_id, (Condition("traits.plan", "eq", "Partner"),))]
    decision = decide(lead_facts(sql({"plan": "partner"})), reps, [partners], rules, {}, NOW)
    assert decision is not None and decision.pool_name == "partners"


# -- rule definitions are checked ------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "op", "value", "message"),
    [
        ("contry", "eq", "de", "unknown field 'contry' (did you mean 'country'?)"),
        ("country", "gt", "de", "'gt' does not apply to 'country' (text)"),
        ("country", "in", ["de", "Germny"], "country 'Germny' is neither"),
        ("country", "in", [], "non-empty list"),
        ("company_size", "between", [1000, 100], "min ≤ max"),
        ("company_size", "eq", "big", "'company_size' is a number"),
        ("industry", "eq", 7, "'industry' is text"),
        ("express", "eq", "yes", "'express' is true or false"),
        ("language", "eq", "1", "not an ISO 639-1 code"),
        ("traits.", "eq", "x", "needs a trait name"),
        ("region", "eq", None, "'eq' needs a value"),
    ],
)
def test_a_rule_that_could_never_work_is_refused_with_what_to_fix(
    field: str, op: str, value: object, message: str
) -> None:
    with pytest.raises(InvalidCondition, match=re.escape(message)):
        check_condition(field, op, value)


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_every_known_field_accepts_exists(field: str) -> None:
    check_condition(field, "exists", None)
