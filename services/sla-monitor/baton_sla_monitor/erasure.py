"""An erased person's rows in the SLA monitor and its reporting store, in one
transaction under the leads' locks and the reporting writers' lock
(:func:`erase_leads`, for a ``resolved`` record of ``leads.erasures``).

Per table (``docs/security.md`` has the same list):

* ``sla.clocks``: kept for compliance and speed-to-lead figures, under the lead's
  erased id (:func:`baton_shared.erasure_steps.erased_id`); an open one is closed
  ``cancelled`` (nothing fires on it any more, no event is published about it).
* ``sla.touches``, ``sla.lead_aliases``: deleted.
* ``reporting.journeys``: kept for the funnel's counts and times under the erased id
  (a journey merged into an erased lead points at its erased id), without the ids
  that lead back to the person's records (first touch event, attribution transition,
  rejection and loss activities, assignment). Campaign, source, industry and segment
  stay: they describe marketing and the market, not the person.

Idempotent: a second run finds nothing filed under the lead's ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_sla_monitor.merging import CANCELLED
from baton_sla_monitor.planning import close
from baton_sla_monitor.reporting.store import LOCK_KEY
from baton_sla_monitor.reporting.tables import JourneyRow
from baton_sla_monitor.tables import Clock, LeadAlias, Touch
from baton_sla_monitor.writes import lock_leads

#: Journey columns that point back at the person's records, cleared.
LINKS = ("touch_id", "attributed_id", "rejected_id", "lost_id", "assignment_id")


@dataclass(frozen=True)
class Erased:
    """What one erasure did in the SLA monitor."""

    clocks: int  # re-filed under the erased id
    cancelled: int  # open clocks closed
    journeys: int  # reporting rows re-filed


async def erase_leads(
    sessions: async_sessionmaker[AsyncSession], erased: Mapping[str, str], now: datetime
) -> Erased:
    """Erase the leads ``erased`` maps (lead id → erased id), as the module says."""
    if not erased:
        return Erased(0, 0, 0)
    leads = list(erased)
    async with sessions.begin() as session:
        await lock_leads(session, leads)
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        await session.execute(delete(Touch).where(Touch.lead_id.in_(leads)))
        await session.execute(
            delete(LeadAlias).where(
                or_(LeadAlias.merged_id.in_(leads), LeadAlias.survivor_id.in_(leads))
            )
        )
        clocks = (
            await session.scalars(
                select(Clock).where(Clock.lead_id.in_(leads)).order_by(Clock.id).with_for_update()
            )
        ).all()
        cancelled = 0
        for clock in clocks:
            if clock.status == "open":
                close(clock, CANCELLED, now)
                cancelled += 1
            clock.lead_id = erased[clock.lead_id]
        journeys = await _erase_journeys(session, erased)
    return Erased(len(clocks), cancelled, journeys)


async def _erase_journeys(session: AsyncSession, erased: Mapping[str, str]) -> int:
    leads = list(erased)
    for lead, anonymous in erased.items():
        await session.execute(
            update(JourneyRow).where(JourneyRow.merged_into == lead).values(merged_into=anonymous)
        )
    rows = (await session.scalars(select(JourneyRow).where(JourneyRow.lead_id.in_(leads)))).all()
    for row in rows:
        for name in LINKS:
            setattr(row, name, None)
        row.lead_id = erased[row.lead_id]
    return len(rows)
