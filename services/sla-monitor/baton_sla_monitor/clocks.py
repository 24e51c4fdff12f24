"""Durable SLA clocks in PostgreSQL: the store the service and the API talk to.

Every change runs in one transaction whose events are published before it commits,
so a crash re-publishes (same deterministic ``event_id``) rather than losing an event.
:meth:`ClockStore.apply` writes a consumer batch (:mod:`baton_sla_monitor.writes`)
under its leads' advisory locks; :meth:`ClockStore.fire_due` runs the deadline sweep
(:mod:`baton_sla_monitor.sweep`); the rest are reads.

Two monitors are safe: the sweep skips clocks another sweeper holds; the lead locks
make records of the same lead handled at once by two monitors see each other;
stopping a clock locks its row, so a clock is met or breached once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_shared.clock import utcnow
from baton_shared.schemas import Activity, Assignment, LeadMerged, SlaEvent, Transition
from baton_shared.sla_policy import SlaPolicy
from baton_sla_monitor import planning, sweep
from baton_sla_monitor.cancelling import cancel_clocks, cancel_late_clocks
from baton_sla_monitor.merging import apply_merges, follow_aliases
from baton_sla_monitor.planning import ASSIGN, ATTEMPTS, FIRST_TOUCH
from baton_sla_monitor.sweep import Fired
from baton_sla_monitor.tables import Clock
from baton_sla_monitor.writes import Applied, BatchWrite, lock_leads

Publish = Callable[[Sequence[SlaEvent]], Awaitable[None]]

__all__ = ["Applied", "ClockStore", "Fired", "Publish"]


class ClockStore:
    """The clocks of one database, under one policy; ``publish`` sends a transaction's
    events (and must return only once they are stored)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], policy: SlaPolicy, publish: Publish
    ):
        self._sessions, self.policy, self._publish = sessions, policy, publish

    def new_clock(self, assignment: Assignment) -> Clock:
        """The first-touch clock an assignment opens, as the policy plans it (no I/O)."""
        return planning.assignment_clock(self.policy, assignment)

    def transition_clocks(self, transition: Transition) -> list[Clock]:
        """The clocks a transition opens, as the policy plans them (no I/O)."""
        return planning.transition_clocks(self.policy, transition)

    async def open(self, assignment: Assignment) -> Clock | None:
        """Open the clock for one assignment; see :meth:`open_many`."""
        opened = await self.open_many([assignment])
        return opened[0] if opened else None

    async def open_many(self, assignments: Sequence[Assignment]) -> list[Clock]:
        """Open the clocks for a batch of assignments in one transaction; the clocks
        created (a re-delivered assignment creates nothing). See :meth:`apply`."""
        return (await self.apply(assignments=assignments)).opened

    async def contacted(self, activity: Activity) -> Clock | None:
        """Record a first touch. Returns the clock it changed; None for a duplicate
        activity, a touch with no clock (yet: it is kept for when the clock opens), or a
        clock already touched."""
        touched = (await self.apply(touches=[activity])).touched
        return touched[0] if touched else None

    async def apply(
        self,
        transitions: Sequence[Transition] = (),
        assignments: Sequence[Assignment] = (),
        touches: Sequence[Activity] = (),
        merges: Sequence[LeadMerged] = (),
    ) -> Applied:
        """One consumer batch in one transaction (merges, then transitions, then
        assignments, then ``contacted`` touches; a recycled or disqualified lead's open
        clocks are cancelled first, an assignment's after it when its lead had left
        already); every event goes out before it commits. Records of a merged-away id
        count for its survivor (:mod:`baton_sla_monitor.merging`). Idempotent: a
        re-delivered batch changes and publishes nothing new. Keep batches to a few
        thousand records: each lead takes an advisory lock."""
        leads = {r.lead_id for r in (*transitions, *assignments, *touches)}
        leads |= {i for m in merges for i in (m.merged_id, m.survivor_id)}
        if not leads:
            return Applied()
        async with self._transaction() as (session, events):
            await lock_leads(session, leads)
            if merges:
                events.extend(await apply_merges(session, merges, utcnow()))
            transitions, assignments, touches = await follow_aliases(
                session, transitions, assignments, touches
            )
            if more := {r.lead_id for r in (*assignments, *touches)} - leads:
                await lock_leads(session, more)
            write = BatchWrite(session, self.policy, events)
            if transitions:
                events.extend(await cancel_clocks(session, transitions))
                await write.open_from_transitions(transitions)
            if assignments:
                await write.open_from_assignments(assignments)
                events.extend(await cancel_late_clocks(session, {a.lead_id for a in assignments}))
            if touches:
                await write.record_touches(touches)
        return write.applied

    async def fire_due(self, now: datetime, limit: int = 1000) -> list[Fired]:
        """Publish what is due at ``now`` (``at_risk`` warnings, ``breached`` deadlines)
        for up to ``limit`` clocks, earliest first, in one transaction."""
        async with self._transaction() as (session, events):
            fired, due_events = await sweep.fire_due(session, now, limit)
            events.extend(due_events)
        return fired

    async def next_due(self) -> datetime | None:
        """When the earliest open clock is next due; None when no clock is open."""
        async with self._sessions() as session:
            return await sweep.next_due(session)

    async def open_count(self) -> dict[str, int]:
        """Open clocks per measure."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Clock.measure, func.count())
                    .where(Clock.status == "open")
                    .group_by(Clock.measure)
                )
            ).all()
        counts = dict.fromkeys((FIRST_TOUCH, ASSIGN, ATTEMPTS), 0)
        counts.update({measure: int(n) for measure, n in rows})
        return counts

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[tuple[AsyncSession, list[SlaEvent]]]:
        """A transaction and the events to publish before it commits (none if it fails)."""
        events: list[SlaEvent] = []
        async with self._sessions.begin() as session:
            yield session, events
            if events:
                await self._publish(events)
