"""Segment message -> canonical LeadEvent: Segment's validation and clock-skew rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baton_ingest.normalize import InvalidEvent, event_time, normalize
from baton_ingest.pages import DEFAULT_PAGE_RULES, PageRule, category_for
from baton_ingest.segment import SegmentCall, parse_message
from baton_shared.schemas import EventType, LeadEvent

RECEIVED = datetime(2025, 4, 1, 12, 0, 0, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def message(**fields: Any) -> SegmentCall:
    base: dict[str, Any] = {"type": "track", "event": "Signed Up", "messageId": "m-1",
                            "userId": "u-1"}
    base.update(fields)
    return parse_message({k: v for k, v in base.items() if v is not None})


def norm(msg: SegmentCall, received_at: datetime = RECEIVED) -> LeadEvent:
    """The canonical record, read back through the schema (which it must satisfy)."""
    record = normalize(msg, received_at=received_at, source="segment", max_future=MAX_FUTURE)
    return LeadEvent.model_validate(record)


# --- clock skew -----------------------------------------------------------------------------


def test_timestamp_wins_over_client_clocks() -> None:
    ts = RECEIVED - timedelta(minutes=7)
    msg = message(
        timestamp=iso(ts),
        originalTimestamp=iso(RECEIVED - timedelta(hours=5)),
        sentAt=iso(RECEIVED - timedelta(hours=4)),
    )
    assert event_time(msg, RECEIVED) == ts
    assert norm(msg).occurred_at == ts


def test_client_clock_skew_is_corrected_from_sent_at() -> None:
    # The device clock is 3 h fast; the event happened 10 min before the batch was sent.
    skew, before_send = timedelta(hours=3), timedelta(minutes=10)
    true_send = RECEIVED - timedelta(seconds=2)
    sent_at = true_send + skew
    original = sent_at - before_send
    msg = message(originalTimestamp=iso(original), sentAt=iso(sent_at))
    expected = RECEIVED - (sent_at - original)
    assert expected == RECEIVED - before_send
    assert norm(msg).occurred_at == expected


@settings(max_examples=50, deadline=None, database=None)
@given(
    skew_s=st.integers(min_value=-86_400 * 30, max_value=86_400 * 30),
    before_send_s=st.integers(min_value=0, max_value=86_400 * 7),
)
def test_skew_correction_keeps_the_gap_between_event_and_send(skew_s, before_send_s) -> None:
    sent_at = RECEIVED + timedelta(seconds=skew_s)
    original = sent_at - timedelta(seconds=before_send_s)
    msg = message(originalTimestamp=iso(original), sentAt=iso(sent_at))
    assert event_time(msg, RECEIVED) == RECEIVED - timedelta(seconds=before_send_s)


def test_original_timestamp_alone_is_trusted_and_nothing_falls_back_to_receive_time() -> None:
    original = RECEIVED - timedelta(hours=2)
    assert event_time(message(originalTimestamp=iso(original)), RECEIVED) == original
    assert event_time(message(sentAt=iso(RECEIVED)), RECEIVED) == RECEIVED
    assert event_time(message(), RECEIVED) == RECEIVED


def test_offset_timestamps_are_compared_as_instants() -> None:
    msg = message(timestamp="2025-04-01T15:30:00+02:00")
    assert norm(msg).occurred_at == datetime(2025, 4, 1, 13, 30, tzinfo=UTC)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"messageId": None}, "messageId"),
        ({"userId": None}, "userId"),
        ({"userId": None, "anonymousId": ""}, "userId"),
        ({"event": None}, "event"),
        ({"type": None}, "type"),
        ({"timestamp": iso(RECEIVED + MAX_FUTURE + timedelta(seconds=1))}, "timestamp"),
        (
            {
                "originalTimestamp": iso(RECEIVED + timedelta(days=3)),
                "sentAt": iso(RECEIVED + timedelta(seconds=1)),
            },
            "timestamp",
        ),
    ],
    ids=[
        "missing-messageId",
        "missing-userId-and-anonymousId",
        "empty-anonymousId",
        "track-without-event",
        "missing-type",
        "far-future-timestamp",
        "far-future-after-skew-correction",
    ],
)
def test_invalid_message_names_the_offending_field(fields: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        norm(message(**fields))
    assert caught.value.path == path
    assert str(caught.value).startswith(f"{path}: ")
    assert caught.value.rule


def test_timestamp_up_to_the_future_limit_is_accepted() -> None:
    at_limit = RECEIVED + MAX_FUTURE
    assert norm(message(timestamp=iso(at_limit))).occurred_at == at_limit


def test_anonymous_only_message_is_valid() -> None:
    event = norm(message(userId=None, anonymousId="anon-9"))
    assert event.lead_id == "anon-9"
    assert event.user_id is None


def test_page_call_needs_no_event_name() -> None:
    event = norm(message(type="page", event=None, name="Pricing",
                         properties={"path": "/pricing"}))
    assert event.type == EventType.PAGE
    assert event.name == "Pricing"
    assert event.page_category == "pricing"


def test_invalid_event_is_a_value_error() -> None:
    assert issubclass(InvalidEvent, ValueError)


# --- page categories --------------------------------------------------------------------------


def page_view(path: str | None = None, context_path: str | None = None, **fields: Any):
    properties = {"path": path} if path is not None else {}
    context = {"page": {"path": context_path}} if context_path is not None else {}
    return norm(message(type="page", event=None, name="Page", properties=properties,
                        context=context, **fields))


@pytest.mark.parametrize(
    ("path", "category"),
    [
        ("/pricing", "pricing"),
        ("/pricing/enterprise", "pricing"),
        ("/pricing/", "pricing"),
        ("/pricingfoo", None),
        ("/blog/some-post", "blog"),
        ("/docs", "docs"),
        ("/", None),
        ("/about/pricing", None),
    ],
)
def test_page_category_from_path_prefix(path: str, category: str | None) -> None:
    assert page_view(path).page_category == category
    assert category_for(path, DEFAULT_PAGE_RULES) == category


def test_context_page_path_is_used_when_properties_path_is_absent() -> None:
    assert page_view(context_path="/pricing/enterprise").page_category == "pricing"
    assert page_view(context_path="/pricingfoo").page_category is None


def test_properties_path_wins_over_context_page_path() -> None:
    assert page_view("/pricing", context_path="/blog").page_category == "pricing"


def test_no_path_or_a_non_string_path_has_no_category() -> None:
    assert page_view().page_category is None
    assert norm(message(type="page", event=None, properties={"path": 42})).page_category is None


def test_track_event_carries_the_category_of_the_page_it_happened_on() -> None:
    event = norm(message(context={"page": {"path": "/demo"}}))
    assert event.page_category == "demo"


def test_custom_page_rules_are_applied() -> None:
    rules = (PageRule("/plans", "pricing"),)
    msg = message(type="page", event=None, properties={"path": "/plans/team"})
    event = normalize(msg, received_at=RECEIVED, source="segment", max_future=MAX_FUTURE,
                      page_rules=rules)
    assert event["page_category"] == "pricing"
    assert category_for("/pricing", rules) is None


# --- identity ---------------------------------------------------------------------------------


def test_lead_id_prefers_user_id_over_email_and_anonymous_id() -> None:
    event = norm(message(userId="u-7", anonymousId="a-7", traits={"email": "jo@acme.example"}))
    assert event.lead_id == "u-7"


def test_lead_id_falls_back_to_email_then_anonymous_id() -> None:
    with_email = norm(message(userId=None, anonymousId="a-7",
                              context={"traits": {"email": "jo@acme.example"}}))
    assert with_email.lead_id == "jo@acme.example"
    assert with_email.anonymous_id == "a-7"

    without_email = norm(message(userId=None, anonymousId="a-7"))
    assert without_email.lead_id == "a-7"


def test_email_is_trimmed_and_lowercased_before_it_becomes_the_lead_id() -> None:
    event = norm(message(userId=None, anonymousId="a-1", traits={"email": "  Jo@ACME.example "}))
    assert event.email == "jo@acme.example"
    assert event.lead_id == "jo@acme.example"


def test_blank_email_is_ignored() -> None:
    event = norm(message(userId=None, anonymousId="a-1", traits={"email": "   "}))
    assert event.email is None
    assert event.lead_id == "a-1"


def test_numeric_user_id_becomes_a_string() -> None:
    event = norm(message(userId=12345))
    assert event.user_id == "12345"
    assert event.lead_id == "12345"


def test_normalized_event_keeps_source_ids_and_payload() -> None:
    msg = message(
        messageId="m-77",
        properties={"plan": "team"},
        context={"ip": "203.0.113.9"},
        timestamp=iso(RECEIVED - timedelta(seconds=30)),
    )
    event = norm(msg)
    assert event.event_id == "m-77"
    assert event.type == EventType.TRACK
    assert event.name == "Signed Up"
    assert event.source == "segment"
    assert event.received_at == RECEIVED
    assert event.properties == {"plan": "team"}
    assert event.context == {"ip": "203.0.113.9"}


def test_skew_correction_that_leaves_the_calendar_is_an_invalid_event_not_a_crash() -> None:
    # Found by schemathesis: a client clock thousands of years off overflowed datetime.
    msg = message(
        originalTimestamp="0160-01-30T20:49:44Z", sentAt="5218-07-23T23:52:50-18:47"
    )
    with pytest.raises(InvalidEvent) as caught:
        norm(msg)
    assert caught.value.path == "originalTimestamp"
