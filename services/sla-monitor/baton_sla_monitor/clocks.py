"""Durable clocks: each state change is decided in a transaction and published before it
commits, so a crash re-publishes (same deterministic ``event_id``) rather than losing it.

Row locks make two monitors safe: the breach sweep takes due clocks with
``FOR UPDATE SKIP LOCKED``, and a ``contacted`` activity locks its open clock,
so a clock is met or breached once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_shared.ids import stable_id
from baton_shared.schemas import Assignment, SlaEvent, SlaStatus
from baton_sla_monitor.policy import SlaPolicy
from baton_sla_monitor.tables import Clock

Publish = Callable[[SlaEvent], Awaitable[None]]


def sla_event(clock: Clock, status: SlaStatus, at: datetime) -> SlaEvent:
    return SlaEvent(
        event_id=stable_id(clock.id, status.value),
        clock_id=clock.id,
        lead_id=clock.lead_id,
        rep_id=clock.rep_id,
        assignment_id=clock.assignment_id,
        status=status,
        started_at=clock.started_at,
        deadline_at=clock.deadline_at,
        at=at,
        elapsed_seconds=clock.elapsed_seconds,
    )


class ClockStore:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], policy: SlaPolicy, publish: Publish
    ):
        self._sessions, self._policy, self._publish = sessions, policy, publish

    async def start(self, assignment: Assignment) -> bool:
        """Open the clock for an assignment; False when it already existed."""
        clock = Clock(
            id=stable_id("clock", assignment.assignment_id),
            assignment_id=assignment.assignment_id,
            lead_id=assignment.lead_id,
            rep_id=assignment.rep_id,
            express=assignment.express,
            qualified_at=assignment.qualified_at,
            started_at=assignment.assigned_at,
            deadline_at=self._policy.deadline_at(assignment.assigned_at, assignment.express),
            status="open",
        )
        async with self._sessions.begin() as session:
            values = {c.name: getattr(clock, c.name) for c in Clock.__table__.columns}
            created = await session.scalar(
                insert(Clock).values(values).on_conflict_do_nothing().returning(Clock.id)
            )
            if created is None:
                return False
            await self._publish(sla_event(clock, SlaStatus.STARTED, assignment.assigned_at))
        return True

    async def contacted(self, lead_id: str, at: datetime) -> Clock | None:
        """Stop the lead's open clock as met; None when no clock is open (late or repeat)."""
        async with self._sessions.begin() as session:
            clock = await session.scalar(
                select(Clock)
                .where(Clock.lead_id == lead_id, Clock.status == "open")
                .order_by(Clock.started_at.desc())
                .limit(1)
                .with_for_update()
            )
            if clock is None:
                return None
            clock.status = "met"
            clock.closed_at = at
            clock.elapsed_seconds = max(0.0, (at - clock.started_at).total_seconds())
            await self._publish(sla_event(clock, SlaStatus.MET, at))
        return clock

    async def breach_due(self, now: datetime, limit: int = 500) -> list[Clock]:
        """Publish ``breached`` for every open clock whose deadline has passed."""
        async with self._sessions.begin() as session:
            due = list(
                (
                    await session.scalars(
                        select(Clock)
                        .where(Clock.status == "open", Clock.deadline_at <= now)
                        .order_by(Clock.deadline_at)
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
            )
            for clock in due:
                clock.status = "breached"
                clock.closed_at = clock.deadline_at
                await self._publish(sla_event(clock, SlaStatus.BREACHED, now))
        return due

    async def clocks_for(self, lead_id: str) -> list[Clock]:
        async with self._sessions() as session:
            return list(
                (
                    await session.scalars(
                        select(Clock).where(Clock.lead_id == lead_id).order_by(Clock.started_at)
                    )
                ).all()
            )
