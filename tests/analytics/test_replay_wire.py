"""``baton replay`` scores ``leads.events`` values without decoding them into LeadEvents
when the compiled core is built (``Replay.score_records``). Whatever the bytes, the
result must be what decoding each value with pydantic and scoring the LeadEvents gives:
the same transitions, states, duplicates and first event times, and the same records
skipped as undecodable (the live scorer dead-letters those).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from baton_analytics.replay import Replay
from baton_scorer import core
from baton_scorer.rules import Rules, load_rules
from baton_shared.schemas import EventType, LeadEvent, PageInfo

pytestmark = pytest.mark.skipif(
    core.KIND != "native", reason="the compiled core is not built (make install builds it)"
)


@pytest.fixture(scope="module", autouse=True, params=["read-inline", "read-ahead"])
def parse_ahead(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test here runs twice: with every record read where it is scored, and with
    each run's records past its third read on the core's second thread (a replay's
    batches are, past their 64th; see ``set_parse_ahead``). The results must not differ."""
    if core._native is None:
        yield request.param
        return
    before = core._native.set_parse_ahead(2**62 if request.param == "read-inline" else 3)
    yield request.param
    core._native.set_parse_ahead(before)


T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
TEXT = st.sampled_from(["", "é", 'say "hi"', "back\\slash", "🙂", "line\nbreak", "\u0000"])
NAMES = ["Demo Requested", "Email Opened", "Webinar Attended", "Pricing Inquiry", "Heartbeat"]
PAGES = ["pricing", "blog", "product", "careers", None]
URLS = ["https://x.io/pricing/enterprise", "/pricing/enterprise?x=1", "/blog", None]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | TEXT
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


# Inside free-form objects: valid JSON that pydantic refuses (lone surrogate, an integer
# past 4,300 digits, nesting past its recursion limit, a raw control character) and its
# neighbours that it accepts.
ODD = [
    b'"\\ud800"',
    b'"\\udc00x"',
    b'"\\ud83d\\ude00"',
    b'"\\u0001"',
    b'"a\x01b"',
    b"1" + b"0" * 5000,
    b"-" + b"9" * 600,
    b"1e400",
    b"-2.5E-3",
    b"[" * 250 + b"]" * 250,
    b"[" * 100 + b"]" * 100,
    b'{"a": [1, {"b": null}]}',
]


# Inside free-form objects, in the exact layout: not JSON (the core's own reader of that
# layout must refuse each, as serde and pydantic do), and valid neighbours of each. NaN and
# Infinity are not JSON, but pydantic reads them: the core leaves them to pydantic.
NOT_JSON = [
    b"01",
    b"-",
    b"1.",
    b".5",
    b"+1",
    b"--1",
    b"1.e3",
    b"[1,]",
    b'{"a":1,}',
    b"[1 2]",
    b'{"a" 1}',
    b"{1:2}",
    b"tru",
    b"nul",
    b"nulll",
    b"[",
    b'{"a":[}]',
    b"'a'",
]
JSON_NEIGHBOURS = [b"0", b"-0", b"10", b"-1.25", b"0.5", b"[1,2]", b'{"a":1,"b":[]}', b"true",
                   b"null", b"[[[]]]", b'"\x7f"', b"NaN", b"-Infinity"]  # fmt: skip


@st.composite
def lead_events(draw: st.DrawFn, index: int) -> LeadEvent:
    kind = draw(st.sampled_from(list(EventType)))
    at = T0 + timedelta(
        hours=draw(st.floats(-24 * 400, 24 * 60, allow_nan=False)),
        microseconds=draw(st.sampled_from([0, 1, 999_999, 500_000])),
    )
    lead = f"lead-{draw(st.integers(0, 4))}"
    anonymous = draw(st.sampled_from([None, None, None, "anon-1"]))
    properties: dict[str, Any] = draw(st.dictionaries(TEXT, JSON_VALUES, max_size=2))
    context: dict[str, Any] = {}
    if url := draw(st.sampled_from(URLS)):  # where trackers put it (rules read them all)
        key = draw(st.sampled_from(["url", "path"]))
        where = draw(st.sampled_from(["properties", "context", "both"]))
        if where != "context":
            properties[key] = url
        if where != "properties":
            context["page"] = {key: url, "title": "t"}
    if draw(st.booleans()):
        properties["plan"] = draw(st.sampled_from(["enterprise", 1, 1.0, True]))
    if draw(st.booleans()):
        context[draw(st.sampled_from(["page", "ip"]))] = draw(JSON_VALUES)  # odd shapes
    traits = draw(
        st.sampled_from([{}, {}, {"title": "VP Sales"}, {"employees": 5000}, {"n": 2**80}])
    )
    return LeadEvent(
        event_id=f"e{draw(st.integers(0, index))}",  # some ids repeat
        lead_id=anonymous if anonymous and draw(st.booleans()) else lead,
        user_id=lead if draw(st.booleans()) else None,
        anonymous_id=anonymous,
        email=draw(st.sampled_from([None, "", "a@corp.com", "b@gmail.com"])),
        type=kind,
        name=draw(st.sampled_from([*NAMES, None])),
        occurred_at=at.astimezone(draw(st.sampled_from(ZONES))),
        received_at=at,
        source=draw(TEXT),
        page_category=draw(st.sampled_from(PAGES)),
        page=PageInfo(url=url, title=draw(TEXT)) if url and draw(st.booleans()) else None,
        campaign=draw(st.sampled_from([{}, {"source": "ads", "name": "q1"}])),
        possible_duplicate=draw(st.booleans()),
        properties=properties,
        traits=traits,
        context=context,
    )


def _edit(raw: bytes, **changes: Any) -> bytes:
    data = orjson.loads(raw)
    data.update(changes)
    return orjson.dumps({k: v for k, v in data.items() if v is not _DROP})


_DROP = object()


@st.composite
def values(draw: st.DrawFn) -> list[bytes]:
    """Encoded events, some in other layouts or invalid."""
    out = []
    for i in range(draw(st.integers(1, 30))):
        raw = draw(lead_events(i)).to_bytes()
        variant = draw(st.integers(0, 14))
        if variant == 0:  # not this layout, still valid: pydantic reads it
            raw = _edit(raw, context=_DROP, possible_duplicate=_DROP)
        elif variant == 1:  # a time pydantic reads in other forms, or rejects
            when = [
                "2025-03-03T09:00:00.1234567Z",
                "2025-03-03 09:00:00Z",
                1741000000,
                "2025-02-29T00:00:00Z",
                "2025-03-03T09:00:00",
                "2025-03-03T24:00:00Z",
                "2025-03-03T09:00:60Z",
                "2025-03-03T09:00:00+05",
                "0001-01-01T00:00:00Z",
                "2025-03-03T09:00:00.5Z",
                "2025-03-03T09:00:00.05-01:30",
                "9999-12-31T23:59:59Z",
            ]
            raw = _edit(raw, occurred_at=draw(st.sampled_from(when)))
        elif variant == 2:  # invalid: the live scorer dead-letters these
            bad = [
                {"schema": 2},
                {"type": "bogus"},
                {"properties": None},
                {"campaign": None},
                {"extra": 1},
                {"event_id": 5},
                {"traits": []},
                {"possible_duplicate": "yes"},
            ]
            raw = _edit(raw, **draw(st.sampled_from(bad)))
        elif variant == 3:
            raw = draw(st.sampled_from([b"", b"not json", b"{}", b"[]", raw[:-1], raw + b"x"]))
        elif variant == 4:
            raw = b" " + raw.replace(b",", b", ") + b"\n"  # spacing is still this layout
        elif variant == 5:  # JSON serde's syntax check passes and pydantic may refuse
            field = draw(st.sampled_from(["properties", "traits", "context"]))
            raw = _edit(raw, **{field: {"z": "@@"}}).replace(b'"@@"', draw(st.sampled_from(ODD)))
        out.append(raw)
    return out


def decoded(values: list[bytes]) -> list[LeadEvent]:
    out = []
    for value in values:
        try:
            out.append(LeadEvent.model_validate_json(value))
        except ValidationError:
            continue
    return out


def outcome(replay: Replay) -> tuple:
    result = replay.finish(None)
    states = {lead: repr(s.to_dict()) for lead, s in replay.states.items()}  # ints past 64 bits
    return (
        [t.to_bytes() for t in result.transitions],
        states,
        result.events,
        result.duplicates,
        result.first_event_at,
        result.held_anonymous,
    )


RULES = load_rules()


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(batches=st.lists(values(), min_size=1, max_size=3))
@example(batches=[[_edit(LeadEvent(event_id="x", lead_id="l", type=EventType.TRACK,
                                   name="Demo Requested", occurred_at=T0, received_at=T0,
                                   source="t").to_bytes(), traits={"title": "CEO"})]])  # fmt: skip
def test_encoded_events_score_as_their_decoded_events_do(batches: list[list[bytes]]) -> None:
    wire, reference = Replay(RULES), Replay(RULES)
    for batch in batches:
        wire.score_records(batch)
        reference.score_events(decoded(batch))
    assert outcome(wire) == outcome(reference)


@settings(max_examples=40, deadline=None, database=None)
@given(
    odd=values(),
    cut=st.integers(0, 700),
    seed=st.integers(0, 2**16),
    leads=st.sampled_from([8, 5_000]),
)
def test_long_runs_score_as_decoded(odd: list[bytes], cut: int, seed: int, leads: int) -> None:
    """Replay batches are thousands of records. Long runs of plain events (ids that
    repeat, leads that interleave), stopped anywhere by odd records, score as pydantic
    decoding does: nothing skipped, scored twice or out of order where the run stops and
    the next call resumes. With 5,000 possible leads the core's lead index grows several
    times within one call."""
    rnd = random.Random(seed)
    # Ids of every length around what the core's index keeps in place (38 bytes).
    lead_ids = [f"lead-{n:04}" + "x" * rnd.choice([0, 28, 29, 30, 60]) for n in range(leads)]
    plain = [
        LeadEvent(
            event_id=f"p{rnd.randrange(900)}", lead_id=lead_ids[rnd.randrange(leads)],
            type=rnd.choice([EventType.PAGE, EventType.TRACK]), name=rnd.choice(NAMES),
            page_category=rnd.choice(PAGES), received_at=T0, source="t",
            occurred_at=T0 + timedelta(hours=rnd.uniform(-900, 900)),
        ).to_bytes()
        for _ in range(700)
    ]  # fmt: skip
    batch = plain[:cut] + odd + plain[cut:]
    wire, reference = Replay(RULES), Replay(RULES)
    wire.score_records(batch)
    reference.score_events(decoded(batch))
    assert outcome(wire) == outcome(reference)


@pytest.mark.parametrize("own_setting", [None, 0])
@pytest.mark.parametrize("at", [0, 1, 2, 3, 4, 66, 67, 68, 131, 1026, 1027, 1028, 1099])
def test_a_value_that_is_not_bytes_stops_a_run_where_it_is(
    at: int, own_setting: int | None
) -> None:
    """A value that is not bytes (not what a Kafka reader gives; ``baton replay`` passes
    b"" for a null value) ends the core's run there, wherever it falls: among the records
    read where they are scored, at a chunk's or a reading thread's first or last record
    (chunks of 64, 1,024 records per thread), or with every record read on the thread
    (``own_setting`` 0). It is skipped as undecodable; the records after it are scored."""
    batch: list[Any] = [
        LeadEvent(event_id=f"e{i}", lead_id=f"l{i % 7}", type=EventType.PAGE,
                  page_category="pricing", occurred_at=T0 + timedelta(minutes=i),
                  received_at=T0, source="t").to_bytes()
        for i in range(1100)
    ]  # fmt: skip
    batch[at] = None
    wire, reference = Replay(RULES), Replay(RULES)
    before = None if own_setting is None else core._native.set_parse_ahead(own_setting)
    try:
        wire.score_records(batch)
    finally:
        if before is not None:
            core._native.set_parse_ahead(before)
    reference.score_events(decoded(batch))
    assert outcome(wire) == outcome(reference)
    assert wire.events == 1099 and len(wire.transitions) > 7


def test_the_exact_layout_is_read_by_the_compiled_core(rules: Rules) -> None:
    """The fast path is taken (not everything left to pydantic): a run of encoded events
    is scored in one call, and stops at the first record in another layout."""
    events = [
        LeadEvent(event_id=f"e{i}", lead_id="l", type=EventType.PAGE, page_category="pricing",
                  occurred_at=T0 + timedelta(minutes=i), received_at=T0, source="t")
        for i in range(3)
    ]  # fmt: skip
    raw = [e.to_bytes() for e in events]
    raw.insert(2, _edit(raw[0], event_id="other", context=_DROP))
    native = core.native_core(rules)
    transitions, scored, duplicates, stopped = native.score_records(
        {}, core.lead_index(), raw, 0, {}
    )
    assert (scored, duplicates, stopped) == (2, 0, 2)
    assert [t.to_stage for t in transitions] == ["mql"]  # two pricing views: 80 points
    assert native.score_records({}, core.lead_index(), raw, 3, {})[1:] == (1, 0, 4)


@pytest.mark.parametrize("field", ["properties", "traits", "context"])
@pytest.mark.parametrize("odd", ODD, ids=lambda b: b[:12].decode(errors="replace"))
def test_free_form_json_pydantic_refuses_is_not_scored(field: str, odd: bytes) -> None:
    """serde only checks a raw value's syntax; a record pydantic refuses (lone surrogate,
    huge integer, deep nesting) must be skipped, not scored and not a crash."""
    demo = LeadEvent(event_id="x", lead_id="l", type=EventType.TRACK, name="Demo Requested",
                     occurred_at=T0, received_at=T0, source="t")  # fmt: skip
    batch = [_edit(demo.to_bytes(), **{field: {"z": "@@"}}).replace(b'"@@"', odd)]
    wire, reference = Replay(RULES), Replay(RULES)
    wire.score_records(batch)
    reference.score_events(decoded(batch))
    assert outcome(wire) == outcome(reference)


@pytest.mark.parametrize("field", ["properties", "traits", "context"])
@pytest.mark.parametrize(
    "text", NOT_JSON + JSON_NEIGHBOURS, ids=lambda b: b.decode(errors="replace")
)
def test_free_form_text_scores_only_when_it_is_json(field: str, text: bytes) -> None:
    """The core reads the layout ``to_bytes`` writes with its own reader, which checks a
    free-form object's syntax itself: what is not JSON is skipped as undecodable (pydantic
    refuses it), and valid JSON next to it is scored as pydantic reads it."""
    demo = LeadEvent(event_id="x", lead_id="l", type=EventType.TRACK, name="Demo Requested",
                     occurred_at=T0, received_at=T0, source="t")  # fmt: skip
    empty = f'"{field}":{{}}'.encode()
    batch = [demo.to_bytes().replace(empty, empty[:-1] + b'"z":' + text + b"}")]
    wire, reference = Replay(RULES), Replay(RULES)
    wire.score_records(batch)
    reference.score_events(decoded(batch))
    assert outcome(wire) == outcome(reference)
    assert wire.events == (1 if text in JSON_NEIGHBOURS else 0)


def test_text_with_escapes_anywhere_scores_as_decoded() -> None:
    """Ids, names, pages and emails whose JSON has an escape (or a character that needs
    none) at every offset a scan of eight bytes at a time can meet it: the core's reader
    of the exact layout takes none of them as plain text, so each scores under the lead
    id pydantic decodes (or is left to pydantic). Each event comes twice: the second is
    a duplicate of an id with that escape. And a raw control character (not JSON: its
    record is skipped) at each of those offsets."""
    batch = []
    for k in range(20):
        for i, special in enumerate(['"', "\\", "\n", "\x01", "\x7f", "é", "\u2028", "🙂"]):
            text = "p" * k + special + "s"
            event = LeadEvent(
                event_id=f"{text}{i}", lead_id=f"{text}-lead", type=EventType.PAGE,
                name=f"{text} Requested", page_category=text, email=f"{text}@corp.com",
                occurred_at=T0 + timedelta(minutes=k), received_at=T0, source=text,
            )  # fmt: skip
            raw = event.to_bytes()
            batch += [raw, raw]
            if special == "\x01":
                batch.append(raw.replace(b"\\u0001", b"\x01").replace(b"-lead", b"-raw"))
    wire, reference = Replay(RULES), Replay(RULES)
    wire.score_records(batch)
    reference.score_events(decoded(batch))
    assert outcome(wire) == outcome(reference)
    assert len(wire.states) == 20 * 8 and wire.duplicates == 20 * 8


@settings(max_examples=200, deadline=None, database=None)
@given(event=lead_events(50))
def test_records_as_to_bytes_writes_them_take_the_cores_own_reader(event: LeadEvent) -> None:
    """The fast path is the core's own reader of the layout ``to_bytes`` writes; serde
    is only its fallback. Every record without an escaped character or an exponent takes
    it (a typo in a key, say, would send them all to serde: right, and slower); spaced
    out, or with an escape or an exponent, it is serde's."""
    raw = event.to_bytes()
    plain = b"\\" not in raw and not re.search(rb"[0-9][eE][-+]?[0-9]", raw)
    assert core._native.reads_exact_layout(raw) == plain
    assert not core._native.reads_exact_layout(raw.replace(b'","', b'", "', 1))
    assert not core._native.reads_exact_layout(raw + b" ")
