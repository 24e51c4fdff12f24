"""What an open clock does next. Pure: plain data in, decisions out, ``now`` passed in.

A clock opens with a schedule (warnings at fractions of its window, then the
deadline). The sweep asks :func:`due` what to fire; a first touch asks
:func:`touch` whether it met the deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from baton_shared.schemas import SlaStatus


@dataclass(frozen=True)
class Schedule:
    """An open clock's remaining plan: ``warn_ats[i]`` fires at ``warn_fractions[i]``."""

    deadline_at: datetime
    warn_ats: tuple[datetime, ...]
    warn_fractions: tuple[float, ...]
    warnings_sent: int = 0

    def next_fire_at(self) -> datetime:
        """When the sweep must look at this clock again."""
        if self.warnings_sent < len(self.warn_ats):
            return self.warn_ats[self.warnings_sent]
        return self.deadline_at


@dataclass(frozen=True)
class Fire:
    """One event the sweep publishes, and the clock's state after it."""

    status: SlaStatus
    due_at: datetime
    fraction: float | None
    warnings_sent: int
    next_fire_at: datetime | None  # None: the clock is closed (breached)


def due(schedule: Schedule, now: datetime) -> Fire | None:
    """The event to publish for ``schedule`` at ``now``, or None when nothing is due.

    Only the latest due action fires: a deadline that passed while the monitor was
    down fires ``breached`` without the stale warnings before it, and two warnings
    that both passed fire only the later one.
    """
    if now >= schedule.deadline_at:
        return Fire(SlaStatus.BREACHED, schedule.deadline_at, None, len(schedule.warn_ats), None)
    passed = sum(1 for at in schedule.warn_ats if at <= now)
    if passed <= schedule.warnings_sent:
        return None
    after = Schedule(schedule.deadline_at, schedule.warn_ats, schedule.warn_fractions, passed)
    return Fire(
        SlaStatus.AT_RISK,
        schedule.warn_ats[passed - 1],
        schedule.warn_fractions[passed - 1],
        passed,
        after.next_fire_at(),
    )


@dataclass(frozen=True)
class Touch:
    """The outcome of a first touch on a clock."""

    status: SlaStatus | None  # the clock's new status and event; None: record the touch only
    elapsed_seconds: float  # wall-clock, assignment → first touch (speed-to-lead)


def touch(status: str, started_at: datetime, deadline_at: datetime, touched_at: datetime) -> Touch:
    """A first touch at ``touched_at`` on a clock in ``status`` (``open`` or ``breached``).

    The outcome follows event time: a touch by the deadline is ``met``, a later one
    ``breached``. On an open clock that event is published. On a clock the sweep
    already breached, a touch by the deadline (an activity that arrived late) turns it
    ``met`` and publishes ``met`` as the correction; a later touch is only recorded,
    so the clock's speed-to-lead is still known.
    """
    elapsed = max(0.0, (touched_at - started_at).total_seconds())
    in_time = touched_at <= deadline_at
    if status == "open":
        return Touch(SlaStatus.MET if in_time else SlaStatus.BREACHED, elapsed)
    return Touch(SlaStatus.MET if in_time else None, elapsed)
