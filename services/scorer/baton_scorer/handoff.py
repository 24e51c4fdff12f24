"""Merging two known leads across partitions: the records and what each side does. Pure.

A merge of lead ``A`` into lead ``B`` (an ``alias`` naming ``A`` as its previous id; an
identify of ``B`` carrying an email ``A`` that is not ``B``) takes three steps, each on the
worker that owns the lead it changes, through the stitched topic (keyed by lead id):

1. ``B``'s worker, scoring the event, sends a *request* keyed by ``A``.
2. ``A``'s worker hands ``A`` over: ``A``'s stored state becomes empty with a
   :class:`Link` ``merged_into = B`` that keeps the state it *shipped*; an *absorb*
   record keyed by ``B`` carries it. From then on every event of ``A`` is forwarded to
   ``B``, naming ``A``. A lead scores an event forwarded from ``A`` only once it has
   absorbed ``A`` (until then it holds it), so ``B`` always knows the event ids ``A``
   counted: a duplicate is recognised. A rep's action (``qualified``, ``rejected``) on
   ``A`` is forwarded the same way and applied to ``B``. The absorb goes first on the
   same topic, and a worker sends it again before its first forward from ``A`` after
   any restart.
3. ``B``'s worker merges the shipped state into its own
   (:func:`baton_scorer.merge.merge_into`) and records ``A`` in ``merged_ids``: a
   repeated absorb of ``A`` is a no-op, so replays after a crash change nothing.

``B`` merged away meanwhile forwards the absorb along its own link. A request for a lead
already merged into another goes on to that one (so every id the aliases and identifies
link ends in one lead, whatever their order); a request into a lead already merged into
it is a no-op. Opposite merges in flight (``A`` into ``B`` while ``B`` into ``A``) make a
cycle of links; every absorb that goes round it settles at the cycle's smallest id,
which takes its link off and becomes the survivor of all of them. Until its own history
(the generation it shipped last) comes back to it, alone or inside another lead's, it
holds the events and requests for it, then runs them.

Every merge applied is also told to the other services (:func:`merge_records`, on
``leads.merges``): the router and the SLA monitor move the merged lead's assignment and
clocks to the survivor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from baton_shared.ids import stable_id
from baton_shared.schemas import EventType, LeadEvent, LeadMerged

PREFIX = b'{"handoff":'  # a handoff record on the stitched topic starts so; events never do
MERGING_TYPES = frozenset({EventType.ALIAS, EventType.IDENTIFY})
KINDS = ("request", "absorb", "event", "activity")


@dataclass(slots=True)
class Link:
    """A lead's identity bookkeeping, stored with its state under ``"identity"``."""

    merged_into: str | None = None  # set: this lead's events go there
    merged_ids: list[str] = field(default_factory=list)  # the leads merged into this one
    away: bool = False  # its own history is elsewhere (it comes back if a cycle settles here)
    gen: int = 0  # how many times it handed itself over: an absorb names the one it carries
    shipped: dict[str, Any] | None = None  # what it handed over: re-sent, never rebuilt
    held: list[str] = field(default_factory=list)  # records it cannot take yet
    released: list[str] = field(default_factory=list)  # held ones it took: run again

    def is_empty(self) -> bool:
        return (
            self.merged_into is None
            and not self.merged_ids
            and self.shipped is None
            and not self.held
            and not self.released
        )

    def waits(self) -> bool:
        """Settled as a cycle's survivor, its own history not back yet: what comes for it
        is held (a duplicate of an event in that history must meet it first)."""
        return self.away and self.merged_into is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "merged_into": self.merged_into,
            "merged_ids": self.merged_ids,
            "away": self.away,
            "gen": self.gen,
            "shipped": self.shipped,
            "held": self.held,
            "released": self.released,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Link:
        if not raw:
            return cls()
        return cls(
            merged_into=raw.get("merged_into"),
            merged_ids=list(raw.get("merged_ids", ())),
            away=bool(raw.get("away")),
            gen=int(raw.get("gen", 0)),
            shipped=raw.get("shipped"),
            held=list(raw.get("held", ())),
            released=list(raw.get("released", ())),
        )


def merge_target(event: LeadEvent) -> str | None:
    """The id of another lead ``event`` says is this lead, if any: an alias's previous id,
    or the email (as ingest keys email events) an identify carries — its pseudonym
    ``email_id`` in privacy mode, as leads are keyed by pseudonyms then."""
    lead_id = event.lead_id
    if event.type is EventType.ALIAS:
        other = event.previous_id
    elif event.type is EventType.IDENTIFY and event.email_id:
        other = event.email_id
    elif event.type is EventType.IDENTIFY and event.email:
        other = event.email.strip().lower()
    else:
        return None
    if not other or other == lead_id or other == event.anonymous_id:
        return None
    return other


def request(absorbed: str, into: str) -> bytes:
    """Step 1: ask ``absorbed``'s worker to hand it over to ``into``."""
    body = {"kind": "request", "from": absorbed, "into": into}
    return orjson.dumps({"handoff": body})


def absorb(absorbed: str, into: str, shipped: dict[str, Any], path: list[str], gen: int) -> bytes:
    """Step 2's record for ``into``'s worker: ``shipped`` is what ``absorbed`` handed over."""
    body = {
        "kind": "absorb",
        "from": absorbed,
        "into": into,
        "shipped": shipped,
        "path": path,
        "gen": gen,
    }
    return orjson.dumps({"handoff": body})


def forwarded(origin: str, into: str, event: str) -> bytes:
    """An event (its JSON) of lead ``origin``, merged away, on its way to ``into``."""
    return orjson.dumps(
        {"handoff": {"kind": "event", "from": origin, "into": into, "event": event}}
    )


def forwarded_activity(origin: str, into: str, activity: str) -> bytes:
    """A rep's action (its JSON) on lead ``origin``, merged away, on its way to ``into``."""
    return orjson.dumps(
        {"handoff": {"kind": "activity", "from": origin, "into": into, "activity": activity}}
    )


def decode(value: bytes) -> dict[str, Any]:
    """A handoff record's body; ValueError when it is not one."""
    body = orjson.loads(value).get("handoff")
    if not isinstance(body, dict) or body.get("kind") not in KINDS:
        raise ValueError("not a handoff record")
    for name in ("from", "into"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise ValueError(f"a handoff record needs {name!r}")
    return body


def next_hop(link: Link, here: str, path: list[str]) -> str | None:
    """Where an absorb arriving at ``here`` goes on; None: it is for ``here``.
    ``path``: the ids it went through, ``here`` not yet included."""
    onward = link.merged_into
    if onward is None:
        return None
    went = [*path, here]
    if onward not in went:
        return onward
    # A cycle of links (the ids from ``onward`` on): every absorb that enters it goes
    # round it once, so each settles at the same id, the cycle's smallest.
    smallest = min(went[went.index(onward) :])
    return None if smallest == here else smallest


def merge_records(
    merged: Iterable[tuple[str, str, float | None]], emitted_at: datetime
) -> list[LeadMerged]:
    """The ``leads.merges`` records of merges applied: (merged id, survivor id, merge
    time, ``emitted_at`` when unknown). The id depends on both lead ids only, so a
    merge applied again after a crash re-emits the same record."""
    return [
        LeadMerged(
            merge_id=stable_id("merge", merged_id, survivor_id),
            merged_id=merged_id,
            survivor_id=survivor_id,
            occurred_at=emitted_at if at is None else datetime.fromtimestamp(at, UTC),
            emitted_at=emitted_at,
        )
        for merged_id, survivor_id, at in merged
    ]
