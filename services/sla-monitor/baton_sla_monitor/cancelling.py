"""Clocks of a lead that left the funnel: cancelled, inside the caller's transaction.

A ``recycled`` or ``disqualified`` transition means nobody is to touch the lead any
more: every open clock of the lead that the lead qualified for by then (its
``qualified_at``, event time like the transition's) is closed as ``cancelled`` and
publishes a ``cancelled`` event; the sweep never fires on it again (only open clocks
are due). A clock already met or breached keeps its outcome. A re-delivered transition
finds nothing open and publishes nothing.

Records may arrive in any order across topics: an assignment consumed after its lead
left (its transition's assign clock was cancelled) opens a clock that
:func:`cancel_late_clocks` cancels in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from baton_shared.schemas import SlaEvent, SlaStatus, Stage, Transition
from baton_sla_monitor.planning import sla_event

#: The stages a lead leaves the funnel for.
LEAVING = frozenset({Stage.RECYCLED, Stage.DISQUALIFIED})

_CANCEL = text(
    "UPDATE sla.clocks AS c SET status = 'cancelled', closed_at = u.at, next_fire_at = NULL "
    "FROM unnest(CAST(:lead AS text[]), CAST(:at AS timestamptz[])) AS u(lead, at) "
    "WHERE c.lead_id = u.lead AND c.status = 'open' AND c.qualified_at <= u.at "
    "RETURNING c.*, u.at AS cancelled_at"
)

_CANCEL_LATE = text(
    "UPDATE sla.clocks AS c SET status = 'cancelled', closed_at = d.at, next_fire_at = NULL "
    "FROM (SELECT lead_id, max(closed_at) AS at FROM sla.clocks "
    "WHERE lead_id = ANY(CAST(:lead AS text[])) AND status = 'cancelled' GROUP BY lead_id) AS d "
    "WHERE c.lead_id = d.lead_id AND c.status = 'open' AND c.qualified_at <= d.at "
    "RETURNING c.*, d.at AS cancelled_at"
)


def leaving(transitions: Sequence[Transition]) -> dict[str, Transition]:
    """Per lead, its newest transition out of the funnel in ``transitions``."""
    out: dict[str, Transition] = {}
    for t in sorted(transitions, key=lambda t: t.occurred_at):
        if t.to_stage in LEAVING:
            out[t.lead_id] = t
    return out


async def cancel_clocks(session: AsyncSession, transitions: Sequence[Transition]) -> list[SlaEvent]:
    """Cancel the open clocks of the leads ``transitions`` recycle or disqualify; the
    ``cancelled`` events to publish."""
    gone = leaving(transitions)
    if not gone:
        return []
    rows = (
        await session.execute(
            _CANCEL,
            {"lead": list(gone), "at": [t.occurred_at for t in gone.values()]},
        )
    ).all()
    return [sla_event(row, SlaStatus.CANCELLED, row.cancelled_at) for row in rows]


async def cancel_late_clocks(session: AsyncSession, lead_ids: Iterable[str]) -> list[SlaEvent]:
    """Cancel the open clocks of ``lead_ids`` that a lead qualified for before it left
    the funnel (a ``cancelled`` clock of the lead closed at or after their
    ``qualified_at``): an assignment consumed after the lead's recycle or disqualify.
    The ``cancelled`` events to publish."""
    rows = (await session.execute(_CANCEL_LATE, {"lead": sorted(set(lead_ids))})).all()
    return [sla_event(row, SlaStatus.CANCELLED, row.cancelled_at) for row in rows]
