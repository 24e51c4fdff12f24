"""Attempts clocks in the database, inside the caller's transaction.

An assignment whose stage the policy asks for a minimum number of contact attempts
opens an attempts clock beside its first-touch clock (planned by
:func:`baton_sla_monitor.planning.attempts_clock`; the lead's older open attempts clock
closes as ``reassigned``, as the first-touch one does), and :func:`started` starts it.
Whenever a lead gets new ``contacted`` activities, or an attempts clock opens after
some, its open and breached attempts clocks are recounted from the stored touches
(:func:`baton_sla_monitor.planning.count_attempts`): ``met`` once the count is reached
by the deadline. The sweep fires their warnings and deadlines like any clock's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from baton_shared.schemas import SlaEvent, SlaStatus
from baton_shared.sla_policy import SlaPolicy
from baton_sla_monitor.planning import (
    ATTEMPTS,
    OPEN_OR_BREACHED,
    attempts_by_clock,
    count_attempts,
    sla_event,
)
from baton_sla_monitor.tables import Clock, Touch


async def started(
    session: AsyncSession, policy: SlaPolicy, clocks: Sequence[Clock]
) -> list[SlaEvent]:
    """New open attempts clocks (the lead's older ones closed by the caller): their
    ``started`` events, and what the attempts seen before them made of them."""
    events = [sla_event(c, SlaStatus.STARTED, c.started_at) for c in clocks]
    return events + await recount(session, policy, {c.lead_id for c in clocks})


async def recount(
    session: AsyncSession, policy: SlaPolicy, lead_ids: Iterable[str]
) -> list[SlaEvent]:
    """Recount the open and breached attempts clocks of ``lead_ids`` from every touch
    stored for them; the ``met`` events to publish."""
    clocks = (
        await session.scalars(
            select(Clock)
            .where(Clock.lead_id.in_(set(lead_ids)), Clock.measure == ATTEMPTS)
            .order_by(Clock.started_at, Clock.id)
            .with_for_update()
        )
    ).all()
    live = {c.lead_id for c in clocks if c.status in OPEN_OR_BREACHED}
    if not live:
        return []
    by_lead: dict[str, list[Clock]] = defaultdict(list)
    for clock in clocks:
        by_lead[clock.lead_id].append(clock)
    touches: dict[str, list[Touch]] = defaultdict(list)
    for touch in (await session.scalars(select(Touch).where(Touch.lead_id.in_(live)))).all():
        touches[touch.lead_id].append(touch)
    events: list[SlaEvent] = []
    for lead in sorted(live):
        times = attempts_by_clock(by_lead[lead], touches[lead])
        for clock in by_lead[lead]:
            if clock.status in OPEN_OR_BREACHED:
                event = count_attempts(policy, clock, times[clock.id])
                events.extend([event] if event else [])
    return events
