"""Account ownership routes on the same account the scorer rolls leads up to
(``baton_shared.accounts``): a lead linked to its company only by a ``group`` call goes
to the rep who owns that company."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from baton_ingest.normalize import normalize
from baton_ingest.segment import parse_message
from baton_router.routing import RepState, decide, lead_facts
from baton_shared.accounts import account_of
from baton_shared.schemas import LeadEvent, Stage, Transition

NOW = datetime(2025, 7, 7, 9, 30, tzinfo=UTC)
OWNER, OTHER = uuid.UUID(int=7), uuid.UUID(int=8)


def sql(lead_id: str, traits: dict, email: str | None = None) -> Transition:
    return Transition(
        transition_id=f"t-{lead_id}",
        lead_id=lead_id,
        from_stage=Stage.MQL,
        to_stage=Stage.SQL,
        score=120,
        fit=20,
        engagement=100,
        reason="r",
        trigger_event_id="e1",
        occurred_at=NOW,
        rules_version="v",
        email=email,
        traits=traits,
    )


def group_call_traits(group_traits: dict) -> dict:
    """The lead's traits after ingest normalised a group call (and the scorer merged them)."""
    raw = {"type": "group", "messageId": "g", "userId": "user-1", "groupId": "crm-0042",
           "traits": group_traits}  # fmt: skip
    record = normalize(
        parse_message(raw), received_at=NOW, source="segment", max_future=timedelta(days=1)
    )
    return LeadEvent.model_validate(record).traits


def test_a_lead_whose_company_came_only_from_a_group_call_goes_to_the_accounts_owner() -> None:
    traits = group_call_traits({"name": "Acme", "website": "https://www.acme.com"})
    transition = sql("user-1", traits)  # no email at all
    facts = lead_facts(transition)
    assert facts.domain == account_of(traits, None) == "acme.com"
    reps = [RepState(OWNER), RepState(OTHER)]
    decision = decide(facts, reps, [], [], {"acme.com": OWNER}, NOW)
    assert decision is not None
    assert (decision.rep_id, decision.strategy) == (OWNER, "account_owner")


def test_a_free_mail_address_names_no_account_to_own() -> None:
    facts = lead_facts(sql("jo@gmail.com", {}, "jo@gmail.com"))
    assert facts.domain is None
    assert facts.get("email_domain") == "gmail.com"  # routing rules still see it
    decision = decide(facts, [RepState(OTHER)], [], [], {"gmail.com": OWNER}, NOW)
    assert decision is not None and decision.strategy != "account_owner"
