"""Identity stitching: anonymous history counts for the lead once an identify links it. Pure.

Every event that carries an ``anonymous_id`` is repartitioned by that id, so the
anonymous id's whole history meets in one place. There an :class:`Alias`
remembers the resolved lead (the ``lead_id`` of the first event that carries the
anonymous id *and* a user id or email) and, until then, holds the anonymous
events back. When the link arrives the held events are released, re-keyed to the
lead, and scored like any other — their event times are kept, and scoring is
order-independent, so a late release is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from baton_scorer.bounds import event_bytes, trim_pending
from baton_shared.schemas import LeadEvent

MAX_PENDING = 200  # anonymous events held per anonymous id before an identify; oldest dropped


@dataclass
class Alias:
    lead_id: str | None = None
    pending: list[LeadEvent] = field(default_factory=list)
    dropped: int = 0
    # The held events' sizes (``bounds.event_bytes``), for the byte cap; not stored.
    sizes: list[int] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        """The alias as the ``aliases`` table stores it (JSON)."""
        return orjson.dumps(
            {
                "lead_id": self.lead_id,
                "pending": [e.model_dump(mode="json", by_alias=True) for e in self.pending],
                "dropped": self.dropped,
            }
        )

    @classmethod
    def from_bytes(cls, stored: bytes | None) -> Alias:
        """What :meth:`to_bytes` wrote; a new alias for nothing stored."""
        if not stored:
            return cls()
        raw = orjson.loads(stored)
        pending = [LeadEvent.model_validate(e) for e in raw.get("pending", [])]
        sizes = [event_bytes(e) for e in pending]
        return cls(raw.get("lead_id"), pending, raw.get("dropped", 0), sizes)


def stitch(alias: Alias, event: LeadEvent) -> list[LeadEvent]:
    """Update ``alias`` (in place) with ``event``; return the events to score now, re-keyed."""
    anonymous = event.anonymous_id
    if anonymous is None:
        return [event]
    if event.lead_id != anonymous:
        # The event names a user id or email: that is the lead this anonymous id is.
        if alias.lead_id is None:
            alias.lead_id = event.lead_id
        released = [_rekey(e, alias.lead_id) for e in alias.pending]
        alias.pending, alias.sizes = [], []
        return [*released, event]
    if alias.lead_id is not None:
        return [_rekey(event, alias.lead_id)]
    alias.pending.append(event)
    alias.sizes.append(event_bytes(event))
    alias.dropped += trim_pending(alias.pending, alias.sizes, MAX_PENDING)
    return []


def _rekey(event: LeadEvent, lead_id: str) -> LeadEvent:
    return event if event.lead_id == lead_id else event.model_copy(update={"lead_id": lead_id})
