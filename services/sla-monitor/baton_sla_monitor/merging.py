"""Merged leads: an id the scorer merged into another lead means that lead from then on.
Inside the caller's transaction, under the leads' locks.

:func:`apply_merges` (a ``leads.merges`` record) makes the merged id an alias of the
survivor and moves the merged lead's clocks and touches to it:

* its open ``assign`` clocks are cancelled: the router withdraws a merged lead's
  waiting transitions, so no assignment would ever stop them (the survivor's own
  transitions open its clocks);
* of the two leads' open first-touch clocks one goes on, as the survivor's: an SQL
  one before an MQL one, the survivor's before the merged lead's — the assignment the
  router keeps; the others are cancelled (a ``cancelled`` event each). An open
  attempts clock goes on with the first-touch clock of its assignment, else it is
  cancelled too. Closed clocks move too, with their outcome (the survivor's history).

:func:`follow_aliases` re-keys what comes later for a merged-away id: its assignments
and touches count for the survivor (so ``contacted`` on the old id stops the clock the
survivor holds); its transitions (emitted before the merge, consumed after) open
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from baton_shared import lead_aliases
from baton_shared.schemas import (
    Activity,
    Assignment,
    LeadMerged,
    SlaEvent,
    SlaStatus,
    Transition,
)
from baton_sla_monitor.planning import ASSIGN, ATTEMPTS, FIRST_TOUCH, close, sla_event
from baton_sla_monitor.tables import Clock, LeadAlias, Touch
from baton_sla_monitor.writes import lock_leads

CANCELLED = "cancelled"
R = TypeVar("R", Assignment, Activity)


async def survivors(session: AsyncSession, lead_ids: Iterable[str]) -> dict[str, str]:
    """The survivor of each of ``lead_ids`` that was merged away (the others are absent)."""
    return await lead_aliases.survivors(session, LeadAlias, lead_ids)


async def apply_merges(
    session: AsyncSession, merges: Sequence[LeadMerged], now: datetime
) -> list[SlaEvent]:
    """Apply the merges in order (module doc); the ``cancelled`` events to publish.
    Idempotent: a merge applied already changes nothing."""
    named = {i for m in merges for i in (m.merged_id, m.survivor_id)}
    aliases = await survivors(session, named)
    if chained := set(aliases.values()) - named:
        await lock_leads(session, chained)  # the survivor's own survivor
    events: list[SlaEvent] = []
    for m in merges:
        merged = m.merged_id
        survivor = await lead_aliases.record_merge(
            session, LeadAlias, aliases, merged, m.survivor_id, now
        )
        if survivor is not None:
            events += await _move_clocks(session, merged, survivor, now)
    return events


async def follow_aliases(
    session: AsyncSession,
    transitions: Sequence[Transition],
    assignments: Sequence[Assignment],
    touches: Sequence[Activity],
) -> tuple[list[Transition], list[Assignment], list[Activity]]:
    """The batch as it stands after the merges seen: assignments and touches of
    merged-away ids re-keyed to their survivor, their transitions dropped."""
    aliases = await survivors(session, (r.lead_id for r in (*transitions, *assignments, *touches)))
    if not aliases:
        return list(transitions), list(assignments), list(touches)
    kept = [t for t in transitions if t.lead_id not in aliases]
    return kept, _rekeyed(assignments, aliases), _rekeyed(touches, aliases)


def _rekeyed(records: Sequence[R], aliases: dict[str, str]) -> list[R]:
    return [
        r.model_copy(update={"lead_id": aliases[r.lead_id]}) if r.lead_id in aliases else r
        for r in records
    ]


async def _move_clocks(
    session: AsyncSession, merged: str, survivor: str, now: datetime
) -> list[SlaEvent]:
    opened = (
        await session.scalars(
            select(Clock)
            .where(Clock.lead_id.in_((merged, survivor)), Clock.status == "open")
            .order_by(Clock.id)
            .with_for_update()
        )
    ).all()
    touch_clocks = [c for c in opened if c.measure == FIRST_TOUCH]
    kept = lead_aliases.goes_on(touch_clocks, survivor, lambda c: c.started_at)
    kept_assignment = kept.assignment_id if kept is not None else None
    events = []
    for clock in opened:
        if clock is kept or (clock.measure == ASSIGN and clock.lead_id == survivor):
            continue
        if clock.measure == ATTEMPTS and kept_assignment is not None:
            if clock.assignment_id == kept_assignment:
                continue
        close(clock, CANCELLED, now)
        events.append(sla_event(clock, SlaStatus.CANCELLED, now))
    await session.flush()
    await session.execute(update(Clock).where(Clock.lead_id == merged).values(lead_id=survivor))
    await session.execute(update(Touch).where(Touch.lead_id == merged).values(lead_id=survivor))
    return events
