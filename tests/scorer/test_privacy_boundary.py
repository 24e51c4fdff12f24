"""The scorer's privacy boundary without a broker: what it opens, seals and keeps.

Keys come from a dict standing in for the key store (the worker test,
``test_privacy_worker.py``, runs the real one on PostgreSQL).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from baton_scorer import handoff
from baton_scorer.privacy import Privacy, scrub
from baton_scorer.step import Source
from baton_shared.privacy import pseudonym, seal_event
from baton_shared.schemas import LeadEvent

ID_KEY = b"i" * 32


class DictKeys:
    """Data keys in a dict: ``create`` makes missing ones, ``del`` erases."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    async def keys(self, subjects: Any, *, create: bool) -> dict[str, bytes]:
        if create:
            for s in subjects:
                self.data.setdefault(s, os.urandom(32))
        return {s: self.data[s] for s in subjects if s in self.data}


def privacy() -> tuple[Privacy, DictKeys]:
    keys = DictKeys()
    return Privacy(keys, ID_KEY, {}), keys  # type: ignore[arg-type]


def sealed_event(keys: DictKeys, **fields: Any) -> bytes:
    at = datetime(2025, 3, 3, tzinfo=UTC)
    clear = LeadEvent(
        event_id="e1", type="identify", occurred_at=at, received_at=at, source="test", **fields
    ).model_dump(mode="json", by_alias=True)
    subject = pseudonym(ID_KEY, clear["lead_id"])
    keys.data.setdefault(subject, os.urandom(32))
    return orjson.dumps(seal_event(clear, ID_KEY, keys.data.__getitem__))


async def test_events_open_with_ids_kept_and_a_state_seals_and_opens() -> None:
    p, keys = privacy()
    traits = {"name": "Ada Lovelace", "title": "VP"}
    value = sealed_event(
        keys, lead_id="u1", user_id="u1", anonymous_id="a1", email="ada@x.example", traits=traits
    )
    lead, anonymous = pseudonym(ID_KEY, "u1"), pseudonym(ID_KEY, "a1")
    opened = await p.open_batch(
        [(Source.STITCHED, value), (Source.EVENTS, b"not json")], [lead, lead]
    )
    event = orjson.loads(opened.records[0][1])
    assert (event["lead_id"], event["anonymous_id"]) == (lead, anonymous)
    assert event["traits"] == traits and event["email"] == "ada@x.example"
    assert opened.records[1] == (Source.EVENTS, b"not json") and opened.index == [0, 1]
    assert anonymous in p.subjects_of(lead) and p.take_changed() == [lead]

    stored = {"traits": traits, "email": "ada@x.example", "identity": {
        "merged_into": None, "shipped": {"state": {"email": "ada@x.example"}},
        "held": ['{"traits": {"name": "Ada Lovelace"}}'], "released": [],
    }}  # fmt: skip
    await p.seal_stored({lead: stored})
    at_rest = orjson.dumps(stored)
    assert b"Ada" not in at_rest and b"ada@" not in at_rest
    assert stored["privacy"]["subjects"] == list(p.subjects_of(lead))
    back = p.open_stored(lead, orjson.loads(at_rest))
    assert back["traits"] == traits and back["identity"]["held"]
    del keys.data[lead]  # erased
    await p.fetch([lead])
    gone = p.open_stored(lead, orjson.loads(at_rest))
    assert (gone["traits"], gone["email"], gone["identity"]["held"]) == ({}, None, [])


async def test_merge_records_travel_sealed_and_an_erased_one_fails() -> None:
    p, keys = privacy()
    body = handoff.absorb("p_a", "p_b", {"state": {"email": "ada@x.example"}}, ["p_a"], 1)
    p.record("p_a", ["p_anon"])
    [(key, wrapped)] = await p.wrap([("p_b", body)])
    assert key == "p_b" and b"ada@" not in wrapped
    assert orjson.loads(wrapped)["subjects"] == ["p_anon"]
    opened = await p.open_batch([(Source.STITCHED, wrapped)], ["p_b"])
    assert opened.records == [(Source.STITCHED, body)]
    assert {"p_a", "p_anon"} <= set(p.subjects_of("p_b"))
    del keys.data["p_b"]
    failed = await p.open_batch([(Source.STITCHED, wrapped)], ["p_b"])
    assert failed.records == [] and failed.failed[0][0] == 0


def test_dead_letter_errors_lose_the_values_pydantic_quotes() -> None:
    try:
        LeadEvent.model_validate({"event_id": "e", "lead_id": "l", "email": ["ada@x.example"]})
    except ValidationError as exc:
        text = scrub(str(exc))
    assert "ada@x.example" not in text and "input_value=…" in text
