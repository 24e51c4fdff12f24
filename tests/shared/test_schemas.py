"""Wire contracts: every record survives the wire, is versioned, and refuses surprises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from baton_shared import schemas
from baton_shared.schemas import (
    RECORDS,
    SCHEMA_VERSION,
    AccountLead,
    AccountStage,
    AccountTransition,
    Activity,
    ActivityKind,
    Assignment,
    DeadLetter,
    EventType,
    LeadErasure,
    LeadEvent,
    LeadMerged,
    Record,
    SlaEvent,
    SlaStatus,
    Stage,
    Transition,
    decode,
    json_schemas,
    trusted_constructor,
)

AT = datetime(2025, 5, 5, 9, 0, 0, 123456, tzinfo=UTC)

SAMPLES: dict[str, Record] = {
    "LeadEvent": LeadEvent(
        event_id="m-1",
        lead_id="u-1",
        user_id="u-1",
        anonymous_id="a-1",
        email="jo@acme.example",
        type=EventType.TRACK,
        name="Demo Requested",
        occurred_at=AT,
        received_at=AT + timedelta(seconds=2),
        source="segment",
        page_category="demo",
        properties={"plan": "team", "seats": 12, "nested": {"a": [1, 2.5, None, True]}},
        traits={"title": "VP Sales"},
        context={"ip": "203.0.113.9"},
    ),
    "Transition": Transition(
        transition_id="t-1",
        lead_id="u-1",
        from_stage=Stage.NEW,
        to_stage=Stage.SQL,
        score=12.5,
        fit=-10.0,
        engagement=22.5,
        reason="express lane: Demo Requested",
        express=True,
        trigger_event_id="m-1",
        trigger_event="Demo Requested",
        occurred_at=AT,
        rules_version="baton-default@abc123",
    ),
    "Assignment": Assignment(
        assignment_id="as-1",
        transition_id="t-1",
        lead_id="u-1",
        rep_id="rep-1",
        strategy="round_robin",
        express=True,
        qualified_at=AT,
        assigned_at=AT + timedelta(seconds=1),
    ),
    "Activity": Activity(
        activity_id="ac-1",
        lead_id="u-1",
        rep_id="rep-1",
        kind=ActivityKind.CONTACTED,
        occurred_at=AT,
    ),
    "SlaEvent": SlaEvent(
        event_id="s-1",
        clock_id="c-1",
        lead_id="u-1",
        rep_id="rep-1",
        assignment_id="as-1",
        status=SlaStatus.MET,
        started_at=AT,
        deadline_at=AT + timedelta(minutes=5),
        at=AT + timedelta(minutes=3),
        elapsed_seconds=180.0,
    ),
    "LeadMerged": LeadMerged(
        merge_id="m-1",
        merged_id="ada@example.com",
        survivor_id="u-1",
        occurred_at=AT,
    ),
    "LeadErasure": LeadErasure(
        erasure_id="e-1",
        stage="resolved",
        subjects=["p_0123456789abcdef0123456789abcdef"],
        lead_ids=["p_0123456789abcdef0123456789abcdef"],
        requested_at=AT,
    ),
    "AccountTransition": AccountTransition(
        transition_id="at-1",
        account_id="acme.com",
        from_stage=AccountStage.COLD,
        to_stage=AccountStage.ENGAGED,
        score=95.5,
        fit=20,
        engagement=75.5,
        leads=[AccountLead(lead_id="u-1", points=50.5), AccountLead(lead_id="u-2", points=25)],
        trigger_lead_id="u-2",
        occurred_at=AT,
        rules_version="default@abc123",
    ),
    "DeadLetter": DeadLetter(
        source_topic="leads.events",
        partition=2,
        offset=41,
        key="u-1",
        value="{not json",
        error="invalid JSON",
        consumer="baton-scorer",
        failed_at=AT,
    ),
}

samples = pytest.mark.parametrize("record", list(SAMPLES.values()), ids=list(SAMPLES))


def test_every_record_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(RECORDS)
    assert all(type(SAMPLES[name]) is model for name, model in RECORDS.items())


@samples
def test_record_round_trips_through_the_wire(record: Record) -> None:
    assert decode(type(record), record.to_bytes()) == record


@samples
def test_record_carries_schema_version_on_the_wire(record: Record) -> None:
    wire = orjson.loads(record.to_bytes())
    assert wire["schema"] == SCHEMA_VERSION == 1
    assert "schema_" not in wire


@samples
def test_unknown_field_is_rejected(record: Record) -> None:
    wire = orjson.loads(record.to_bytes())
    with pytest.raises(ValidationError, match="surprise"):
        decode(type(record), orjson.dumps({**wire, "surprise": 1}))


@samples
def test_unknown_schema_version_is_rejected(record: Record) -> None:
    wire = orjson.loads(record.to_bytes())
    with pytest.raises(ValidationError, match="schema"):
        decode(type(record), orjson.dumps({**wire, "schema": 2}))


@samples
def test_missing_required_field_is_rejected(record: Record) -> None:
    wire = orjson.loads(record.to_bytes())
    required = next(
        name for name, field in type(record).model_fields.items()
        if field.is_required()
    )
    del wire[required]
    with pytest.raises(ValidationError, match=required):
        decode(type(record), orjson.dumps(wire))


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b"null"])
def test_garbage_is_rejected(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        decode(LeadEvent, raw)


def test_records_are_immutable() -> None:
    with pytest.raises(ValidationError):
        SAMPLES["Transition"].score = 1_000  # type: ignore[misc]


def test_event_times_must_carry_a_timezone() -> None:
    wire = orjson.loads(SAMPLES["LeadEvent"].to_bytes())
    wire["occurred_at"] = "2025-05-05T09:00:00"
    with pytest.raises(ValidationError, match="occurred_at"):
        decode(LeadEvent, orjson.dumps(wire))


def test_enums_travel_as_their_plain_values() -> None:
    wire = orjson.loads(SAMPLES["Transition"].to_bytes())
    assert (wire["from_stage"], wire["to_stage"]) == (Stage.NEW.value, Stage.SQL.value)
    assert orjson.loads(SAMPLES["LeadEvent"].to_bytes())["type"] == EventType.TRACK.value


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"]), max_size=8), children,
                      max_size=4),
    max_leaves=12,
)
tz_datetimes = st.builds(
    lambda dt, minutes: dt.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=-12 * 60, max_value=14 * 60),
)


@settings(max_examples=50, deadline=None, database=None)
@given(
    properties=st.dictionaries(st.text(max_size=10).filter(str.isprintable), json_values,
                               max_size=5),
    occurred_at=tz_datetimes,
    name=st.none() | st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
    type_=st.sampled_from(list(EventType)),
)
def test_any_lead_event_round_trips(properties, occurred_at, name, type_) -> None:
    event = LeadEvent(
        event_id="m-1", lead_id="u-1", type=type_, name=name, occurred_at=occurred_at,
        received_at=occurred_at, source="segment", properties=properties,
    )
    back = decode(LeadEvent, event.to_bytes())
    assert back == event
    assert back.occurred_at == occurred_at  # the same instant
    assert back.occurred_at.utcoffset() == occurred_at.utcoffset()


def test_json_schemas_cover_every_record_type() -> None:
    declared = {
        name for name, obj in vars(schemas).items()
        if isinstance(obj, type) and issubclass(obj, Record) and obj is not Record
    }
    documents = json_schemas()
    assert set(documents) == declared == set(RECORDS)
    for name, document in documents.items():
        model = RECORDS[name]
        assert document["title"] == name
        assert "schema" in document["properties"], name
        assert "schema_" not in document["properties"], name
        assert document.get("additionalProperties") is False, name
        required = {n for n, f in model.model_fields.items() if f.is_required()}
        assert required <= set(document.get("required", [])), name


def test_json_schemas_are_serialisable() -> None:
    assert orjson.loads(orjson.dumps(json_schemas())) == json_schemas()


# --- trusted construction (hot paths) -----------------------------------------------------------


@samples
def test_trusted_constructor_builds_what_model_construct_builds(record: Record) -> None:
    model = type(record)
    given = {name: getattr(record, name) for name in record.model_fields_set}
    built = trusted_constructor(model)(**given)
    reference = model.model_construct(**given)
    assert built == reference == record
    assert built.to_bytes() == reference.to_bytes() == record.to_bytes()
    assert built.model_fields_set == reference.model_fields_set


def test_trusted_constructor_fills_defaults_and_fresh_factories() -> None:
    build = trusted_constructor(Transition)
    given = {
        name: getattr(SAMPLES["Transition"], name)
        for name, field in Transition.model_fields.items()
        if field.is_required()
    }
    first, second = build(**given), build(**given)
    assert first.express is False and first.emitted_at is None and first.traits == {}
    assert first.traits is not second.traits  # a default_factory runs per instance
    assert decode(Transition, first.to_bytes()) == first


def test_trusted_constructor_refuses_unknown_and_missing_fields() -> None:
    build = trusted_constructor(Transition)
    with pytest.raises(TypeError, match="unknown \\['colour'\\]"):
        build(**SAMPLES["Transition"].model_dump(), colour="red")
    with pytest.raises(TypeError, match=r"missing \[.*'lead_id'"):
        build(transition_id="t-1")
