"""Merging two known leads across partitions: the records and what each side does. Pure.

A merge of lead ``A`` into lead ``B`` (an ``alias`` naming ``A`` as its previous id; an
identify of ``B`` carrying an email ``A`` that is not ``B``) takes three steps, each on the
worker that owns the lead it changes, through the stitched topic (keyed by lead id):

1. ``B``'s worker, scoring the event, sends a *request* keyed by ``A``.
2. ``A``'s worker hands ``A`` over: ``A``'s stored state becomes empty with a
   :class:`Link` ``merged_into = B`` that keeps the state it *shipped*; an *absorb*
   record keyed by ``B`` carries it. From then on every event of ``A`` is forwarded,
   re-keyed, to ``B`` on the same topic — after the absorb, which a worker sends again
   before its first forward from ``A`` after any restart, so ``B`` always meets the
   absorb (and the event ids it remembers) before any event forwarded from ``A``.
3. ``B``'s worker merges the shipped state into its own
   (:func:`baton_scorer.merge.merge_into`) and records ``A`` in ``merged_ids``: a
   repeated absorb of ``A`` is a no-op, so replays after a crash change nothing.

``B`` merged away meanwhile forwards the absorb along its own link. A request for a lead
already merged (into anyone) or into a lead already merged into it is a no-op: the first
link wins. Two opposite merges in flight (``A`` into ``B`` while ``B`` into ``A``) make a
cycle of links; an absorb that would go round it settles at the smallest id on its path,
which takes its link off and becomes the survivor of all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from baton_shared.schemas import EventType, LeadEvent

PREFIX = b'{"handoff":'  # a handoff record on the stitched topic starts so; events never do
MERGING_TYPES = frozenset({EventType.ALIAS, EventType.IDENTIFY})


@dataclass(slots=True)
class Link:
    """A lead's identity bookkeeping, stored with its state under ``"identity"``."""

    merged_into: str | None = None  # set: this lead's events go there
    merged_ids: list[str] = field(default_factory=list)  # the leads merged into this one
    away: bool = False  # its own history is elsewhere (it comes back if a cycle settles here)
    shipped: dict[str, Any] | None = None  # what it handed over: re-sent, never rebuilt

    def is_empty(self) -> bool:
        return self.merged_into is None and not self.merged_ids and self.shipped is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "merged_into": self.merged_into,
            "merged_ids": self.merged_ids,
            "away": self.away,
            "shipped": self.shipped,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Link:
        if not raw:
            return cls()
        return cls(
            merged_into=raw.get("merged_into"),
            merged_ids=list(raw.get("merged_ids", ())),
            away=bool(raw.get("away")),
            shipped=raw.get("shipped"),
        )


def merge_target(event: LeadEvent) -> str | None:
    """The id of another lead ``event`` says is this lead, if any: an alias's previous id,
    or the email (as ingest keys email events) an identify carries."""
    lead_id = event.lead_id
    if event.type is EventType.ALIAS:
        other = event.previous_id
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


def absorb(
    absorbed: str, into: str, shipped: dict[str, Any], path: list[str], settle: bool
) -> bytes:
    """Step 2's record for ``into``'s worker: ``shipped`` is what ``absorbed`` handed over."""
    body = {
        "kind": "absorb",
        "from": absorbed,
        "into": into,
        "shipped": shipped,
        "path": path,
        "settle": settle,
    }
    return orjson.dumps({"handoff": body})


def decode(value: bytes) -> dict[str, Any]:
    """A handoff record's body; ValueError when it is not one."""
    body = orjson.loads(value).get("handoff")
    if not isinstance(body, dict) or body.get("kind") not in ("request", "absorb"):
        raise ValueError("not a handoff record")
    for name in ("from", "into"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise ValueError(f"a handoff record needs {name!r}")
    return body


def next_hop(link: Link, here: str, path: list[str]) -> tuple[str, bool] | None:
    """Where an absorb arriving at ``here`` goes on, and whether it settles there; None:
    it is for ``here``. ``path``: the ids it went through, ``here`` not yet included."""
    onward = link.merged_into
    if onward is None:
        return None
    went = [*path, here]
    if onward not in went:
        return onward, False
    smallest = min(went)  # a cycle of links: every absorb on it settles at the same id
    return None if smallest == here else (smallest, True)
