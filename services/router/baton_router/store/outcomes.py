"""A rep's outcome as the scorer decided it, inside the caller's routing transaction.

* A lead that became a **customer** leaves the funnel: its open assignments (the rep's,
  an SDR task) close as ``customer`` and free their reps' capacity, its queue entries
  are withdrawn, and each nurture track it was enrolled in gets a ``lead.customer``
  webhook so the track stops nurturing it. The rep is not told: they, or the CRM on
  their behalf, reported the win.
* A **re-routed** SQL (``reason_kind`` ``reroute``: a rejection whose disposition code
  the rules re-route) goes to another rep than the one who had it; when nobody else is
  free it waits in the queue like any SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from baton_router.store.assigning import OPEN, Assigner, one_less_open
from baton_router.store.nurture import track_for, track_webhook, tracks
from baton_router.store.release import close_assignments, withdraw_queued
from baton_router.tables import AssignmentRow, RoutedTransition
from baton_shared.schemas import Assignment, Transition


async def close_customers(
    session: AsyncSession, transitions: Sequence[Transition], now: datetime
) -> dict[str, str]:
    """Take the new customers out of the funnel (module doc). Returns each transition's
    routed status: ``released`` (something held the lead) or ``ignored``."""
    won = {t.lead_id: t for t in sorted(transitions, key=lambda t: t.occurred_at)}
    closed = await close_assignments(session, won, now)
    withdrawn = await withdraw_queued(session, won)
    told = await _stop_nurture(session, won, now)
    held = {row.lead_id for row in closed} | withdrawn | told
    return {t.transition_id: "released" if t.lead_id in held else "ignored" for t in transitions}


async def _stop_nurture(
    session: AsyncSession, won: dict[str, Transition], now: datetime
) -> set[str]:
    """A ``lead.customer`` webhook to every track that nurtured one of the leads."""
    enrolled = (
        await session.scalars(
            select(RoutedTransition).where(
                RoutedTransition.lead_id.in_(list(won)), RoutedTransition.status == "nurtured"
            )
        )
    ).all()
    known = await tracks(session) if enrolled else []
    sent: set[tuple[str, str]] = set()
    for row in enrolled:
        track = track_for(known, Transition.model_validate(row.payload))
        if track is None or (row.lead_id, track.name) in sent:
            continue
        sent.add((row.lead_id, track.name))
        customer = won[row.lead_id]
        payload = _customer_payload(customer, track.name, now)
        message_id = f"msg_customer_{customer.transition_id}_{track.id}"
        session.add(track_webhook(message_id, track, payload))
    return {lead_id for lead_id, _ in sent}


def _customer_payload(transition: Transition, track: str, now: datetime) -> dict[str, object]:
    """``lead.customer``: the lead the track nurtured is a customer now."""
    return {
        "type": "lead.customer",
        "timestamp": now.isoformat(),
        "data": {
            "lead_id": transition.lead_id,
            "transition_id": transition.transition_id,
            "track": track,
            "won_at": transition.occurred_at.isoformat(),
        },
    }


async def reroute(
    session: AsyncSession, assigner: Assigner, transitions: Sequence[Transition], now: datetime
) -> dict[str, Assignment]:
    """Give each re-routed SQL to another rep than its last one (closing that
    assignment if the rejection did not come through this router's API)."""
    assigned: dict[str, Assignment] = {}
    for transition in transitions:
        last = await session.scalar(
            select(AssignmentRow)
            .where(AssignmentRow.lead_id == transition.lead_id)
            .order_by(AssignmentRow.assigned_at.desc())
            .limit(1)
            .with_for_update()
        )
        if last is not None and last.status == OPEN:
            last.status, last.closed_at = "rejected", now
            await one_less_open(session, last.rep_id)
        exclude = frozenset({last.rep_id}) if last is not None else frozenset()
        assigned |= await assigner.assign(
            session, [transition], now, exclude=exclude, previous=last
        )
    return assigned
