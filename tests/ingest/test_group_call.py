"""A Segment ``group`` call describes the lead's company: its traits become the lead's
``company`` trait (with the group id), never the person's own traits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from baton_ingest.normalize import normalize
from baton_ingest.segment import parse_message
from baton_shared.accounts import account_of
from baton_shared.schemas import LeadEvent

RECEIVED = datetime(2025, 4, 1, 12, 0, 0, tzinfo=UTC)


def norm(raw: dict[str, Any]) -> LeadEvent:
    record = normalize(
        parse_message(raw), received_at=RECEIVED, source="segment", max_future=timedelta(days=1)
    )
    return LeadEvent.model_validate(record)


def test_group_traits_become_the_company_object_with_the_group_id() -> None:
    event = norm(
        {
            "type": "group",
            "messageId": "g-1",
            "anonymousId": "anon-7",
            "groupId": "acct-42",
            "traits": {
                "name": "Acme Inc",
                "industry": "SaaS",
                "employees": 250,
                "email": "info@acme.com",
            },
            "context": {"traits": {"name": "Ada Lovelace", "title": "CTO"}},
        }
    )
    assert event.group_id == "acct-42"
    assert event.traits == {
        "name": "Ada Lovelace",  # the person's name is not the company's
        "title": "CTO",
        "company": {
            "name": "Acme Inc",
            "industry": "SaaS",
            "employees": 250,
            "email": "info@acme.com",
            "id": "acct-42",
        },
    }
    # The company's address is not the person's: the lead stays keyed by its own id.
    assert (event.email, event.lead_id) == (None, "anon-7")
    assert account_of(event.traits, event.email) == "acct-42"


def test_a_group_call_with_the_company_website_names_the_account_by_domain() -> None:
    event = norm(
        {
            "type": "group",
            "messageId": "g-2",
            "userId": "user-9",
            "groupId": "0012",
            "traits": {"website": "https://www.Acme.com/about"},
        }
    )
    assert event.traits["company"] == {"website": "https://www.Acme.com/about", "id": "0012"}
    assert account_of(event.traits, event.email) == "acme.com"


def test_identify_traits_stay_the_persons() -> None:
    event = norm(
        {
            "type": "identify",
            "messageId": "i-1",
            "userId": "user-9",
            "traits": {"name": "Ada", "email": "Ada@Acme.com", "company": {"name": "Acme"}},
        }
    )
    assert event.traits == {"name": "Ada", "email": "Ada@Acme.com", "company": {"name": "Acme"}}
    assert event.email == "ada@acme.com"
