"""The deadline sweep, inside the caller's transaction.

It takes up to ``limit`` open clocks due at ``now``, earliest first, with ``FOR UPDATE
SKIP LOCKED`` (each due clock goes to exactly one of several monitors); the pure
:func:`baton_sla_monitor.lifecycle.due` decides what each fires (an ``at_risk``
warning or ``breached``); every clock's new schedule is written in one statement. One
select and one update per call, whatever the number of clocks; the caller publishes
the events before it commits. Between sweeps the monitor sleeps until the next due
time (:func:`next_due`, :func:`pause_seconds`), so a warning is not held back by a
fixed tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from baton_shared.schemas import SlaEvent, SlaStatus
from baton_sla_monitor import lifecycle
from baton_sla_monitor.planning import schedule_of, sla_event
from baton_sla_monitor.tables import Clock

_SWEEP_UPDATE = text(
    "UPDATE sla.clocks AS c SET warnings_sent = u.w, next_fire_at = u.n, status = u.s, "
    "closed_at = COALESCE(u.c, c.closed_at) "
    "FROM unnest(CAST(:id AS text[]), CAST(:w AS int[]), CAST(:n AS timestamptz[]), "
    "CAST(:s AS text[]), CAST(:c AS timestamptz[])) AS u(id, w, n, s, c) "
    "WHERE c.id = u.id"
)

#: The shortest pause between sweeps, so clocks due a few milliseconds apart are fired
#: together rather than one transaction each.
MIN_PAUSE_SECONDS = 0.05

# A due clock's new state: warnings sent, next fire time, status, closed at.
Row = tuple[int, datetime | None, str, datetime | None]


@dataclass(frozen=True)
class Fired:
    """An event the sweep published: for metrics (lateness = now - due)."""

    status: SlaStatus
    lateness_seconds: float
    stage: str
    team: str | None


def decide(clock: Any, now: datetime) -> tuple[Row, SlaEvent | None, Fired | None]:
    """What a clock the index says is due does at ``now``: its new state, and the event
    it fires (none when it was not due after all: its next fire time is re-synced)."""
    schedule = schedule_of(clock)
    fire = lifecycle.due(schedule, now)
    if fire is None:
        return (schedule.warnings_sent, schedule.next_fire_at(), "open", None), None, None
    breached = fire.status == SlaStatus.BREACHED
    row: Row = (
        fire.warnings_sent,
        fire.next_fire_at,
        "breached" if breached else "open",
        clock.deadline_at if breached else None,
    )
    lateness = max(0.0, (now - fire.due_at).total_seconds())
    return (
        row,
        sla_event(clock, fire.status, now, fire.fraction),
        Fired(fire.status, lateness, clock.stage, clock.team),
    )


def due_clocks(now: datetime, limit: int) -> Select[Any]:
    """Up to ``limit`` open clocks due at ``now``, earliest first, locked (skipping those
    another sweeper holds): a range of the partial index of open clocks."""
    return (
        select(*Clock.__table__.columns)
        .where(Clock.status == "open", Clock.next_fire_at <= now)
        .order_by(Clock.next_fire_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


#: When the earliest open clock is next due: the first entry of the same index.
NEXT_DUE = select(func.min(Clock.next_fire_at)).where(Clock.status == "open")


async def fire_due(
    session: AsyncSession, now: datetime, limit: int
) -> tuple[list[Fired], list[SlaEvent]]:
    """Take and update the clocks due at ``now``; what fired, and the events to publish."""
    fired: list[Fired] = []
    events: list[SlaEvent] = []
    changes: dict[str, list[Any]] = {k: [] for k in ("id", "w", "n", "s", "c")}
    due = (await session.execute(due_clocks(now, limit))).all()
    for clock in due:
        row, event, fire = decide(clock, now)
        if event is not None and fire is not None:
            events.append(event)
            fired.append(fire)
        for key, value in zip(changes, (clock.id, *row), strict=True):
            changes[key].append(value)
    if due:
        await session.execute(_SWEEP_UPDATE, changes)
    return fired, events


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest open clock is next due (:data:`NEXT_DUE`)."""
    return await session.scalar(NEXT_DUE)


def pause_seconds(due: datetime | None, now: datetime, tick_seconds: float) -> float:
    """How long to sleep before the next sweep: until ``due``, but at least
    :data:`MIN_PAUSE_SECONDS` and at most ``tick_seconds`` (clocks opened meanwhile may
    be due sooner)."""
    if due is None:
        return tick_seconds
    return min(tick_seconds, max(MIN_PAUSE_SECONDS, (due - now).total_seconds()))
