"""Reading Segment messages: the cheap checks decide exactly what SegmentMessage decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from baton_ingest.segment import (
    SegmentBatch,
    SegmentCall,
    SegmentMessage,
    _fast_call,
    parse_batch,
    parse_message,
)

SDK_TRACK = {
    "type": "track",
    "messageId": "0b7c1c6e-3a5e-4a57-9c1f-7d8f0e0c2d11",
    "userId": "u-1",
    "anonymousId": "a-1",
    "event": "Pricing Viewed",
    "properties": {"plan": "team", "seats": 12},
    "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
    "timestamp": "2026-11-23T10:00:00.123+00:00",
    "integrations": {},
}


def by_the_model(raw: dict[str, Any]) -> SegmentCall:
    return SegmentCall.from_model(SegmentMessage.model_validate(raw))


def same_call(a: SegmentCall, b: SegmentCall) -> bool:
    """Equal fields, and equal UTC offsets, which decide how a time is written."""
    stamps = ("timestamp", "original_timestamp", "sent_at")
    return a == b and all(
        (getattr(a, s) and getattr(a, s).utcoffset())
        == (getattr(b, s) and getattr(b, s).utcoffset())
        for s in stamps
    )


@pytest.mark.parametrize(
    "raw",
    [
        SDK_TRACK,
        {**SDK_TRACK, "userId": 42, "timestamp": "2026-11-23T10:00:00Z"},
        {
            "type": "page",
            "messageId": "m",
            "anonymousId": "a",
            "sentAt": "2026-11-23T10:00:00+02:00",
            "originalTimestamp": "2026-11-23T09:59:00.5-05:30",
            "properties": {"path": "/pricing"},
        },
        {"type": "identify", "messageId": "m", "userId": 1.5, "traits": {"email": "a@b.c"}},
        {"type": "alias", "messageId": "m", "userId": "u", "previousId": "old"},
        {"type": "group", "messageId": "m", "userId": "u", "groupId": 7},
    ],
)
def test_sdk_shaped_messages_take_the_cheap_path_and_match_the_model(raw: dict[str, Any]) -> None:
    fast = _fast_call(raw)
    assert fast is not None
    assert same_call(fast, by_the_model(raw))


@pytest.mark.parametrize(
    "raw",
    [
        {**SDK_TRACK, "type": "purchase"},
        {**SDK_TRACK, "messageId": ""},
        {**SDK_TRACK, "messageId": "x" * 257},
        {**SDK_TRACK, "userId": True},
        {**SDK_TRACK, "userId": "u" * 257},
        {**SDK_TRACK, "properties": None},
        {**SDK_TRACK, "context": []},
        {**SDK_TRACK, "timestamp": "2026-11-23T10:00:00"},
        {**SDK_TRACK, "timestamp": "2026-13-23T10:00:00Z"},
        {**SDK_TRACK, "timestamp": 1700000000},
        {**SDK_TRACK, "timestamp": "2026-11-23 10:00:00Z"},
        {**SDK_TRACK, "writeKey": 5},
        {**SDK_TRACK, "user_id": "by-field-name"},
        {**SDK_TRACK, "type": ["track"]},
    ],
)
def test_anything_unusual_is_left_to_the_model(raw: dict[str, Any]) -> None:
    assert _fast_call(raw) is None
    try:
        expected: SegmentCall | type[ValidationError] = by_the_model(raw)
    except ValidationError:
        expected = ValidationError
    if expected is ValidationError:
        with pytest.raises(ValidationError):
            parse_message(raw)
    else:
        assert isinstance(expected, SegmentCall)
        assert same_call(parse_message(raw), expected)


def instants() -> st.SearchStrategy[str]:
    zones = st.sampled_from(["Z", "+00:00", "-00:00", "+02:00", "-05:30", "+23:59", "+24:00"])
    moments = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
    fraction = st.sampled_from(["", ".5", ".123", ".123456", ".1234567"])

    def write(moment: datetime, frac: str, zone: str) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + frac + zone

    return st.builds(write, moments, fraction, zones)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, min_size=1, max_size=3)
    ),
    max_leaves=8,
)
field_values = st.one_of(
    json_values,
    instants(),
    st.text(min_size=0, max_size=300),
    st.sampled_from(
        ["track", "identify", "page", "screen", "group", "alias", "2026-02-30T10:00:00Z"]
    ),
)
field_names = st.sampled_from(
    [
        "type",
        "messageId",
        "userId",
        "anonymousId",
        "previousId",
        "groupId",
        "event",
        "name",
        "category",
        "properties",
        "traits",
        "context",
        "timestamp",
        "originalTimestamp",
        "sentAt",
        "writeKey",
        "message_id",
        "integrations",
        "channel",
    ]
)


messages = st.one_of(
    st.dictionaries(field_names, field_values, max_size=8),
    # An SDK's message with a few fields changed: mostly valid, so the cheap path decides.
    st.builds(
        lambda changes: {**SDK_TRACK, **changes},
        st.dictionaries(field_names, field_values, max_size=3),
    ),
)


@settings(max_examples=600, deadline=None, database=None)
@given(messages)
@example({"type": "track", "messageId": "m", "userId": 10**20})
@example({"type": "track", "messageId": "m", "sentAt": "0001-01-01T00:00:00+23:59"})
def test_cheap_checks_decide_every_message_as_the_model_does(raw: dict[str, Any]) -> None:
    try:
        expected = by_the_model(raw)
    except ValidationError:
        with pytest.raises(ValidationError):
            parse_message(raw)
        return
    assert same_call(parse_message(raw), expected)


def test_times_are_read_with_their_offsets() -> None:
    call = parse_message({**SDK_TRACK, "timestamp": "2026-11-23T10:00:00.5-05:30"})
    assert call.timestamp == datetime(2026, 11, 23, 15, 30, 0, 500_000, tzinfo=UTC)
    assert call.timestamp.utcoffset() == timezone(timedelta(hours=-5, minutes=-30)).utcoffset(None)


envelope_values = st.one_of(
    field_values,
    st.lists(st.dictionaries(st.text(max_size=3), json_values, max_size=2), max_size=3),
    st.lists(json_values, min_size=1, max_size=3),
)
envelopes = st.dictionaries(
    st.sampled_from(["batch", "sentAt", "context", "writeKey", "sent_at", "write_key", "x"]),
    envelope_values,
    max_size=4,
)


@settings(max_examples=400, deadline=None, database=None)
@given(st.one_of(envelopes, st.builds(lambda e: {"batch": [SDK_TRACK], **e}, envelopes)))
@example({"batch": [SDK_TRACK] * 2501})
@example({"batch": [SDK_TRACK], "sentAt": "2026-11-23 10:00:00Z"})
def test_batch_envelope_is_decided_as_the_model_does(body: dict[str, Any]) -> None:
    try:
        model = SegmentBatch.model_validate(body)
    except ValidationError:
        with pytest.raises(ValidationError):
            parse_batch(body)
        return
    assert parse_batch(body) == (model.batch, model.context)


def test_an_sdk_batch_is_read_without_copying_its_messages() -> None:
    body = {"batch": [SDK_TRACK] * 100, "sentAt": "2026-11-23T10:00:01.5Z", "writeKey": "k"}
    assert parse_batch(body).batch is body["batch"]
