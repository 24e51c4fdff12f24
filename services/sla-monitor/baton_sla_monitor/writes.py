"""One consumer batch written into the clocks, inside the caller's transaction.

In causal order: transitions open ``assign`` and MQL clocks and supersede the leads'
older transition-opened ones; assignments open first-touch clocks (closing the lead's
older one as ``reassigned``) and stop their transitions' assign clocks, and the
attempts clocks the policy asks for (:mod:`baton_sla_monitor.attempts`);
``contacted`` touches are stored, stop first-touch clocks and count as attempts. Each
step is a handful of multi-row statements whatever the batch size, and works in any
arrival order (an assignment before its transition, a touch before its clock). The
rows are filled in by :mod:`baton_sla_monitor.planning`; the events each step decides
are appended to ``events`` for the caller to publish before it commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from baton_shared.schemas import Activity, Assignment, SlaEvent, SlaStatus, Transition
from baton_shared.sla_policy import SlaPolicy
from baton_sla_monitor import attempts
from baton_sla_monitor.planning import (
    ASSIGN,
    ATTEMPTS,
    FIRST_TOUCH,
    OPEN_OR_BREACHED,
    apply_touch,
    assignment_clock,
    attempts_clock,
    clock_touched_by,
    close,
    sla_event,
    stop_assign,
    transition_clocks,
)
from baton_sla_monitor.tables import Clock, Touch

_SUPERSEDE = text(
    "UPDATE sla.clocks AS c SET status = 'superseded', closed_at = u.at, next_fire_at = NULL "
    "FROM unnest(CAST(:lead AS text[]), CAST(:at AS timestamptz[])) AS u(lead, at) "
    "WHERE c.lead_id = u.lead AND c.status = 'open' AND c.assignment_id IS NULL "
    "AND c.started_at < u.at"
)

_LOCK_LEADS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('sla:' || k, 0)) "
    "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k"
)


@dataclass
class Applied:
    """What one batch changed, for metrics."""

    opened: list[Clock] = field(default_factory=list)  # first-touch clocks of assignments
    touched: list[Clock] = field(default_factory=list)  # first touches recorded
    assigned: list[Clock] = field(default_factory=list)  # assign clocks stopped


async def lock_leads(session: AsyncSession, lead_ids: Iterable[str]) -> None:
    """Take the leads' advisory locks (until commit) in one sorted order, so batches
    handled at once by two monitors see each other's leads and cannot deadlock."""
    await session.execute(_LOCK_LEADS, {"keys": sorted(lead_ids)})


class BatchWrite:
    """The writes of one batch in one session; ``events`` collects what to publish and
    ``applied`` what changed."""

    def __init__(self, session: AsyncSession, policy: SlaPolicy, events: list[SlaEvent]):
        self.session, self.policy, self.events = session, policy, events
        self.applied = Applied()

    async def open_from_transitions(self, transitions: Sequence[Transition]) -> None:
        """Supersede the leads' older open transition-opened clocks, then open the clocks
        of the new transitions. A transition consumed after its assignment opens an assign
        clock that stops at once, and an MQL clock that is already replaced."""
        newest: dict[str, datetime] = {}
        for t in transitions:
            newest[t.lead_id] = max(t.occurred_at, newest.get(t.lead_id, t.occurred_at))
        await self.session.execute(_SUPERSEDE, {"lead": list(newest), "at": list(newest.values())})
        unique = {t.transition_id: t for t in transitions}
        planned = [c for t in unique.values() for c in transition_clocks(self.policy, t)]
        if not planned:
            return
        assigned_at = await self._first_assigned_at({c.transition_id for c in planned})
        latest = await self._latest_first_touch({c.lead_id for c in planned})
        started: dict[str, list[SlaEvent]] = {}
        for clock in planned:
            if clock.started_at < newest[clock.lead_id]:
                close(clock, "superseded", newest[clock.lead_id])
            elif clock.measure == FIRST_TOUCH and (
                clock.transition_id in assigned_at
                or latest.get(clock.lead_id, clock.started_at) > clock.started_at
            ):
                close(clock, "reassigned", clock.started_at)
            else:
                # Decided before the insert, so a late transition costs no extra round trip.
                started[clock.id] = [sla_event(clock, SlaStatus.STARTED, clock.started_at)]
                if clock.measure == ASSIGN and clock.transition_id in assigned_at:
                    at = assigned_at[clock.transition_id]
                    stop = stop_assign(self.policy, clock, at, None)
                    started[clock.id].extend([stop] if stop else [])
        created = await self._insert_new(planned)
        for clock in created:
            self.events.extend(started.get(clock.id, ()))
        mql = [c for c in created if c.measure == FIRST_TOUCH and c.status == "open"]
        if mql:
            await self._touched_before_opening(mql)

    async def open_from_assignments(self, assignments: Sequence[Assignment]) -> None:
        """Open the first-touch clocks of the assignments (``started``), closing each
        lead's older open first-touch clock as ``reassigned``, and stop the assign clocks
        of their transitions.

        An assignment older than a first-touch clock already seen for its lead (out of
        order) is stored closed as ``reassigned``. A touch seen before its assignment
        stops the clock at once.
        """
        # A batch may repeat an assignment.
        unique = {c.id: c for c in (assignment_clock(self.policy, a) for a in assignments)}
        planned = sorted(unique.values(), key=lambda c: c.started_at)
        latest = await self._latest_first_touch({c.lead_id for c in planned})
        newest_in_batch = {c.lead_id: c.id for c in planned}  # sorted: the last one wins
        for clock in planned:
            seen = latest.get(clock.lead_id)
            if newest_in_batch[clock.lead_id] != clock.id or (
                seen is not None and seen > clock.started_at
            ):
                close(clock, "reassigned", clock.started_at)
        counting = self._attempts_clocks(assignments, planned)
        created = await self._insert_new([*planned, *counting])
        counting = [c for c in created if c.measure == ATTEMPTS]
        created = [c for c in created if c.measure == FIRST_TOUCH]
        opened = [c for c in created if c.status == "open"]
        if opened:
            await self._reassign_older(FIRST_TOUCH, opened)
            self.events.extend(sla_event(c, SlaStatus.STARTED, c.started_at) for c in opened)
            touched = await self._touched_before_opening(opened)
            created = [touched.get(c.id, c) for c in created]
        self.applied.opened.extend(created)
        await self._stop_assign_clocks(assignments)
        if started := [c for c in counting if c.status == "open"]:
            await self._reassign_older(ATTEMPTS, started)
            self.events.extend(await attempts.started(self.session, self.policy, started))

    async def _reassign_older(self, measure: str, opened: Sequence[Clock]) -> None:
        """Close the leads' other open ``measure`` clocks as ``reassigned``: ``opened``
        are their new ones."""
        await self.session.execute(
            update(Clock)
            .where(
                Clock.lead_id.in_([c.lead_id for c in opened]),
                Clock.measure == measure,
                Clock.status == "open",
                Clock.id.not_in([c.id for c in opened]),
            )
            .values(status="reassigned", closed_at=func.now(), next_fire_at=None)
        )

    def _attempts_clocks(
        self, assignments: Sequence[Assignment], first_touch: Sequence[Clock]
    ) -> list[Clock]:
        """The attempts clocks of the assignments whose stage asks for attempts, closed
        as ``reassigned`` when their first-touch clock is."""
        by_id = {a.assignment_id: a for a in assignments}
        planned = []
        for paired in first_touch:
            clock = attempts_clock(self.policy, by_id[paired.assignment_id or ""])
            if clock is not None and paired.status != "open":
                close(clock, paired.status, paired.started_at)
            planned.extend([clock] if clock is not None else [])
        return planned

    async def record_touches(self, activities: Sequence[Activity]) -> None:
        """Store the touches (once per activity id) and stop the first-touch clock each
        new one is for: its assignment's, else the lead's latest started by then. A
        duplicate, a touch with no clock (yet), or one on a clock already touched
        changes nothing."""
        new = await self._store_touches(activities)
        if not new:
            return
        by_lead: dict[str, list[Clock]] = defaultdict(list)
        for clock in (
            await self.session.scalars(
                select(Clock)
                .where(Clock.lead_id.in_({a.lead_id for a in new}), Clock.measure == FIRST_TOUCH)
                .order_by(Clock.started_at, Clock.id)
                .with_for_update()
            )
        ).all():
            by_lead[clock.lead_id].append(clock)
        for activity in new:
            clock = clock_touched_by(activity, by_lead[activity.lead_id])
            if (
                clock is None
                or clock.status not in OPEN_OR_BREACHED
                or clock.first_touch_at is not None
                or activity.occurred_at < clock.started_at
            ):
                continue
            self.applied.touched.append(clock)
            self._emit(apply_touch(self.policy, clock, activity.occurred_at))
        leads = {a.lead_id for a in new}
        self.events.extend(await attempts.recount(self.session, self.policy, leads))

    async def _store_touches(self, activities: Sequence[Activity]) -> list[Activity]:
        """Insert the touches not seen before; those, in event-time order."""
        rows = {
            a.activity_id: {
                "activity_id": a.activity_id,
                "lead_id": a.lead_id,
                "rep_id": a.rep_id,
                "assignment_id": a.assignment_id,
                "occurred_at": a.occurred_at,
            }
            for a in activities
        }
        stored = set(
            (
                await self.session.scalars(
                    insert(Touch)
                    .values(list(rows.values()))
                    .on_conflict_do_nothing()
                    .returning(Touch.activity_id)
                )
            ).all()
        )
        return sorted(
            (a for a in {a.activity_id: a for a in activities}.values() if a.activity_id in stored),
            key=lambda a: a.occurred_at,
        )

    async def _stop_assign_clocks(self, assignments: Sequence[Assignment]) -> None:
        """The first assignment of a transition stops its assign clock: ``met`` by the
        target, else ``breached`` (or, on a clock the sweep already breached, a ``met``
        correction when the assignment was in time but consumed late)."""
        first: dict[str, Assignment] = {}
        for a in sorted(assignments, key=lambda a: a.assigned_at, reverse=True):
            first[a.transition_id] = a
        clocks = (
            await self.session.scalars(
                select(Clock)
                .where(
                    Clock.measure == ASSIGN,
                    Clock.transition_id.in_(first),
                    Clock.status.in_(OPEN_OR_BREACHED),
                    Clock.first_touch_at.is_(None),
                )
                .with_for_update()
            )
        ).all()
        for clock in clocks:
            assignment = first[clock.transition_id or ""]
            self.applied.assigned.append(clock)
            self._emit(stop_assign(self.policy, clock, assignment.assigned_at, assignment.pool))

    async def _touched_before_opening(self, opened: list[Clock]) -> dict[str, Clock]:
        """Stop the new first-touch clocks whose lead was touched (as seen so far) after
        they started. Returns the touched clocks by id."""
        touches = (
            await self.session.execute(
                select(Touch.lead_id, Touch.assignment_id, Touch.occurred_at).where(
                    Touch.lead_id.in_([c.lead_id for c in opened])
                )
            )
        ).all()
        touched: dict[str, Clock] = {}
        for clock in opened:
            times = [
                t.occurred_at
                for t in touches
                if t.lead_id == clock.lead_id
                and t.occurred_at >= clock.started_at
                and t.assignment_id in (None, clock.assignment_id)
            ]
            if not times:
                continue
            loaded = await self.session.get(Clock, clock.id)
            assert loaded is not None
            touched[clock.id] = loaded
            self._emit(apply_touch(self.policy, loaded, min(times)))
        return touched

    def _emit(self, event: SlaEvent | None) -> None:
        if event is not None:
            self.events.append(event)

    async def _first_assigned_at(self, transition_ids: set[str | None]) -> dict[str, datetime]:
        """When each transition's first assignment (as seen so far) opened its clock."""
        rows = await self.session.execute(
            select(Clock.transition_id, func.min(Clock.started_at))
            .where(
                Clock.transition_id.in_(transition_ids),
                Clock.measure == FIRST_TOUCH,
                Clock.assignment_id.is_not(None),
            )
            .group_by(Clock.transition_id)
        )
        return dict(rows.all())

    async def _latest_first_touch(self, leads: Iterable[str]) -> dict[str, datetime]:
        """When each lead's newest first-touch clock started."""
        rows = await self.session.execute(
            select(Clock.lead_id, func.max(Clock.started_at))
            .where(Clock.lead_id.in_(list(leads)), Clock.measure == FIRST_TOUCH)
            .group_by(Clock.lead_id)
        )
        return dict(rows.all())

    async def _insert_new(self, planned: Sequence[Clock]) -> list[Clock]:
        """Insert the planned clocks in one multi-row statement; the ones that were new."""
        table = cast(Table, Clock.__table__)
        columns = [c.name for c in table.columns]
        created_ids = set(
            (
                await self.session.scalars(
                    insert(table).on_conflict_do_nothing().returning(table.c.id),
                    [{n: getattr(c, n) for n in columns} for c in planned],
                )
            ).all()
        )
        return [c for c in planned if c.id in created_ids]
