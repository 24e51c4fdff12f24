"""An erased person's rows in the router, in one transaction under the leads' locks
(:meth:`ErasureStore.erase`, for a ``resolved`` record of ``leads.erasures``).

Per table (``docs/security.md`` has the same list):

* ``outbox``: every row about the lead (webhook, Slack and Kafka messages, delivered
  or not) is deleted: a message not yet sent is not sent any more.
* ``assignments``: kept for the reps' counts and history, under the lead's erased id
  (:func:`baton_shared.erasure_steps.erased_id`); an open one is closed ``erased``,
  its rep's capacity freed, and the rep told (``lead.taken_back``, reason
  ``lead_erased``, naming the erased id).
* ``routed_transitions``: kept (the primary key makes a re-delivered transition a
  no-op) under the erased id, the stored transition without email, traits, sealed
  fields or the merged id a merge names; a queue entry leaves the queue (``erased``).
* ``lead_aliases``: the lead's merges are deleted.

Idempotent: a second run finds nothing filed under the lead's ids. ``used_links``
(assignment ids) and ``idempotency_keys`` (responses sealed at rest, gone after
``KEY_TTL``) hold no lead id to erase.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_router.payloads import taken_back_payload
from baton_router.store.assigning import OPEN, one_less_open
from baton_router.store.merges import MERGE_TRIGGER, WAITING, lock_leads
from baton_router.store.outbox import webhook_row
from baton_router.tables import AssignmentRow, LeadAlias, RoutedTransition

ERASED = "erased"  # an assignment or queue entry closed by an erasure
#: Transition fields that are the person's, blanked in a kept routed transition.
PERSONAL_FIELDS: dict[str, Any] = {"email": None, "traits": {}, "sealed": None}


@dataclass(frozen=True)
class Erased:
    """What one erasure did in the router."""

    transitions: int  # routed transitions scrubbed
    assignments: int  # assignments re-filed under the erased id
    closed: int  # open assignments closed ``erased``
    outbox: int  # outbox rows deleted


def scrubbed_transition(payload: dict[str, Any], erased: str) -> dict[str, Any]:
    """A stored transition without the person: the erased id for the lead, no email,
    traits or sealed fields, and no merged lead id in a merge's trigger."""
    out = {**payload, **PERSONAL_FIELDS, "lead_id": erased}
    if str(out.get("trigger_event_id", "")).startswith(f"{MERGE_TRIGGER}:"):
        out["trigger_event_id"] = f"{MERGE_TRIGGER}:{ERASED}"
    return out


class ErasureStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self._sessions = sessions

    async def erase(self, erased: Mapping[str, str], now: datetime) -> Erased:
        """Erase the leads ``erased`` maps (lead id → erased id), as the module says."""
        if not erased:
            return Erased(0, 0, 0, 0)
        async with self._sessions.begin() as session:
            leads = list(erased)
            await lock_leads(session, leads)
            await session.execute(
                delete(LeadAlias).where(
                    or_(LeadAlias.merged_id.in_(leads), LeadAlias.survivor_id.in_(leads))
                )
            )
            assignments = (
                await session.scalars(
                    select(AssignmentRow)
                    .where(AssignmentRow.lead_id.in_(leads))
                    .order_by(AssignmentRow.id)
                    .with_for_update()
                )
            ).all()
            routed = (
                await session.scalars(
                    select(RoutedTransition)
                    .where(RoutedTransition.lead_id.in_(leads))
                    .with_for_update()
                )
            ).all()
            outbox = await _delete_outbox(
                session,
                leads,
                [str(row.id) for row in assignments],
                [row.transition_id for row in routed],
            )
            closed = 0
            for row in assignments:
                if row.status == OPEN:
                    row.status, row.closed_at = ERASED, now
                    await one_less_open(session, row.rep_id)
                    closed += 1
                    _tell_rep(session, row.id, erased[row.lead_id], row.rep_id, now)
                row.lead_id = erased[row.lead_id]
            for entry in routed:
                if entry.status in WAITING:
                    entry.status = ERASED
                entry.payload = scrubbed_transition(entry.payload, erased[entry.lead_id])
                entry.lead_id = erased[entry.lead_id]
        return Erased(len(routed), len(assignments), closed, outbox)


def _tell_rep(
    session: AsyncSession, assignment_id: uuid.UUID, erased: str, rep_id: uuid.UUID, now: datetime
) -> None:
    payload = taken_back_payload(assignment_id, erased, rep_id, "lead_erased", None, now)
    session.add(webhook_row(f"msg_{ERASED}_{assignment_id}", rep_id, payload))


async def _delete_outbox(
    session: AsyncSession, lead_ids: list[str], assignment_ids: list[str], transition_ids: list[str]
) -> int:
    """Delete the outbox rows about the leads: keyed by a lead id, or naming one of its
    leads, assignments or transitions in the message id or the payload."""
    named = [*lead_ids, *assignment_ids, *transition_ids]
    result = await session.execute(
        _DELETE_OUTBOX,
        {
            "keys": lead_ids,
            "quoted": [f'%"{_like(value)}"%' for value in named],
            "inside": [f"%{_like(value)}%" for value in (*assignment_ids, *transition_ids)],
        },
    )
    return int(getattr(result, "rowcount", 0) or 0)


_DELETE_OUTBOX = text(
    "DELETE FROM router.outbox WHERE key = ANY(CAST(:keys AS text[])) "
    "OR payload::text LIKE ANY(CAST(:quoted AS text[])) "
    "OR message_id LIKE ANY(CAST(:inside AS text[]))"
)


def _like(value: str) -> str:
    """``value`` matched literally in a LIKE pattern."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
