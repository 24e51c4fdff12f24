"""The canonical record ingest writes is the LeadEvent schema, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, get_type_hints

from hypothesis import given, settings
from hypothesis import strategies as st

from baton_ingest.normalize import InvalidEvent, normalize
from baton_ingest.records import EventRecord, PageRecord, record_of, to_bytes
from baton_ingest.segment import parse_message
from baton_shared.schemas import EventType, LeadEvent, PageInfo, decode

RECEIVED = datetime(2026, 11, 23, 12, 0, 0, 123_456, tzinfo=UTC)


def wire_names(model: type[Any]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def test_records_have_exactly_the_schema_fields_in_its_order() -> None:
    assert list(get_type_hints(EventRecord)) == wire_names(LeadEvent)
    assert list(get_type_hints(PageRecord)) == wire_names(PageInfo)


def test_a_schema_built_event_becomes_the_same_bytes() -> None:
    event = LeadEvent(
        event_id="e-1",
        lead_id="l-1",
        type=EventType.PAGE,
        occurred_at=RECEIVED - timedelta(seconds=3),
        received_at=RECEIVED,
        source="email",
        page=PageInfo(path="/pricing"),
        properties={"n": 1.5},
    )
    assert to_bytes(record_of(event)) == event.to_bytes()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3)
        | st.dictionaries(st.text(), inner, min_size=1, max_size=3)
    ),
    max_leaves=10,
)
objects = st.dictionaries(st.text(max_size=10), json_values, max_size=4)
instants = st.builds(
    lambda moment, zone: moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + zone,
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2026, 11, 24)),
    st.sampled_from(["Z", "+02:00", "-05:30", "-00:00"]),
)


@settings(max_examples=300, deadline=None, database=None)
@given(
    kind=st.sampled_from(["track", "identify", "page", "screen", "group", "alias"]),
    user_id=st.none() | st.text(min_size=1, max_size=20) | st.integers(),
    properties=objects,
    traits=objects,
    context=objects,
    url=st.none() | st.sampled_from(["https://a.example/pricing?utm_source=x", "/docs", "ü"]),
    timestamp=st.none() | instants,
    sent_at=st.none() | instants,
    original=st.none() | instants,
)
def test_published_bytes_decode_as_a_lead_event_and_reserialise_identically(
    kind: str,
    user_id: Any,
    properties: dict[str, Any],
    traits: dict[str, Any],
    context: dict[str, Any],
    url: str | None,
    timestamp: str | None,
    sent_at: str | None,
    original: str | None,
) -> None:
    raw: dict[str, Any] = {
        "type": kind,
        "messageId": "m-1",
        "anonymousId": "a-1",
        "event": "Signed Up",
        "groupId": "g-1",
        "previousId": "p-1",
        "properties": {**properties, "url": url},
        "traits": traits,
        "context": {**context, "userAgent": "Mozilla/5.0", "ip": "203.0.113.9"},
    }
    for key, value in (
        ("userId", user_id),
        ("timestamp", timestamp),
        ("sentAt", sent_at),
        ("originalTimestamp", original),
    ):
        if value is not None:
            raw[key] = value
    try:
        record = normalize(
            parse_message(raw),
            received_at=RECEIVED,
            source="segment",
            max_future=timedelta(days=1),
        )
    except InvalidEvent:
        return
    wire = to_bytes(record)
    event = decode(LeadEvent, wire)
    assert event.to_bytes() == wire
    assert event.event_id == "m-1"
    assert event.properties == raw["properties"]
