"""Durable clocks in PostgreSQL. Each state change is decided (by the pure
``policy``/``lifecycle``) in a transaction and published before that transaction
commits, so a crash re-publishes (same deterministic ``event_id``) rather than
losing an event.

Two monitors are safe: the sweep takes due clocks with ``FOR UPDATE SKIP LOCKED``
(each due clock goes to exactly one sweeper); opening a clock and recording a touch
take a per-lead advisory lock, so an assignment and a contact of the same lead
processed at once by two monitors still see each other; a touch locks its clock's
row, so a clock is met or breached once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_shared.ids import stable_id
from baton_shared.schemas import Activity, Assignment, SlaEvent, SlaStatus
from baton_sla_monitor import lifecycle
from baton_sla_monitor.policy import SlaPolicy
from baton_sla_monitor.tables import Clock, Touch

Publish = Callable[[Sequence[SlaEvent]], Awaitable[None]]

_SWEEP_UPDATE = text(
    "UPDATE sla.clocks AS c SET warnings_sent = u.w, next_fire_at = u.n, status = u.s, "
    "closed_at = COALESCE(u.c, c.closed_at) "
    "FROM unnest(CAST(:id AS text[]), CAST(:w AS int[]), CAST(:n AS timestamptz[]), "
    "CAST(:s AS text[]), CAST(:c AS timestamptz[])) AS u(id, w, n, s, c) "
    "WHERE c.id = u.id"
)

#: Assignments carry no stage yet: the router assigns SQLs.
ASSIGNED_STAGE = "sql"


def sla_event(
    clock: Any, status: SlaStatus, at: datetime, fraction: float | None = None
) -> SlaEvent:
    suffix = () if fraction is None else (f"{fraction:g}",)
    touched = status in (SlaStatus.MET, SlaStatus.BREACHED)
    return SlaEvent(
        event_id=stable_id(clock.id, status.value, *suffix),
        clock_id=clock.id,
        lead_id=clock.lead_id,
        rep_id=clock.rep_id,
        assignment_id=clock.assignment_id,
        status=status,
        started_at=clock.started_at,
        deadline_at=clock.deadline_at,
        at=at,
        elapsed_seconds=clock.elapsed_seconds if touched else None,
        counted_seconds=clock.counted_seconds if touched else None,
        team=clock.team,
        stage=clock.stage,
        express=clock.express,
        policy_version=clock.policy_version,
        window_seconds=clock.window_seconds,
        warning_fraction=fraction,
        system_delay_seconds=clock.system_delay_seconds,
        assign_target_seconds=clock.assign_target_seconds,
    )


@dataclass(frozen=True)
class Fired:
    """An event the sweep published: for metrics (lateness = now - due)."""

    status: SlaStatus
    lateness_seconds: float
    stage: str
    team: str | None


def schedule_of(clock: Any) -> lifecycle.Schedule:
    """The schedule of a clock (an ORM object or a row of its columns)."""
    return lifecycle.Schedule(
        clock.deadline_at,
        tuple(clock.warn_ats or ()),
        tuple(clock.warn_fractions or ()),
        clock.warnings_sent or 0,
    )


class ClockStore:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], policy: SlaPolicy, publish: Publish
    ):
        self._sessions, self.policy, self._publish = sessions, policy, publish

    def new_clock(self, assignment: Assignment) -> Clock:
        """The clock an assignment opens, as the policy plans it (no I/O)."""
        plan = self.policy.plan(
            assignment.assigned_at, ASSIGNED_STAGE, assignment.express, assignment.pool
        )
        delay = (assignment.assigned_at - assignment.qualified_at).total_seconds()
        return Clock(
            id=stable_id("clock", assignment.assignment_id),
            assignment_id=assignment.assignment_id,
            lead_id=assignment.lead_id,
            rep_id=assignment.rep_id,
            team=assignment.pool,
            stage=ASSIGNED_STAGE,
            express=assignment.express,
            policy_version=self.policy.version,
            calendar=plan.calendar,
            window_seconds=plan.window_seconds,
            qualified_at=assignment.qualified_at,
            started_at=assignment.assigned_at,
            deadline_at=plan.deadline_at,
            warn_ats=[w.at for w in plan.warnings],
            warn_fractions=[w.fraction for w in plan.warnings],
            warnings_sent=0,
            next_fire_at=plan.warnings[0].at if plan.warnings else plan.deadline_at,
            status="open",
            system_delay_seconds=max(0.0, delay),
            assign_target_seconds=self.policy.assign_target_seconds(assignment.pool),
        )

    async def open(self, assignment: Assignment) -> Clock | None:
        """Open the clock for one assignment; see :meth:`open_many`."""
        opened = await self.open_many([assignment])
        return opened[0] if opened else None

    async def open_many(self, assignments: Sequence[Assignment]) -> list[Clock]:
        """Open the clocks for a batch of assignments in one transaction (``started``),
        closing each lead's older open clock as ``reassigned``. Returns the clocks
        created; a re-delivered assignment creates nothing.

        An assignment older than one already seen for its lead (out of order) is stored
        closed as ``reassigned``. A touch seen before its assignment stops the clock at
        once. Keep batches to a few thousand: each lead takes an advisory lock.
        """
        if not assignments:
            return []
        unique = {c.id: c for c in map(self.new_clock, assignments)}  # a batch may repeat one
        planned = sorted(unique.values(), key=lambda c: c.started_at)
        leads = sorted({c.lead_id for c in planned})
        events: list[SlaEvent] = []
        async with self._sessions.begin() as session:
            await _lock_leads(session, leads)
            latest = dict(
                (
                    await session.execute(
                        select(Clock.lead_id, func.max(Clock.started_at))
                        .where(Clock.lead_id.in_(leads))
                        .group_by(Clock.lead_id)
                    )
                ).all()
            )
            newest_in_batch = {c.lead_id: c.id for c in planned}  # sorted: the last one wins
            for clock in planned:
                seen = latest.get(clock.lead_id)
                if newest_in_batch[clock.lead_id] != clock.id or (
                    seen is not None and seen > clock.started_at
                ):
                    clock.status, clock.closed_at = "reassigned", clock.started_at
                    clock.next_fire_at = None
            table = cast(Table, Clock.__table__)
            columns = [c.name for c in table.columns]
            created_ids = set(
                (
                    await session.scalars(
                        insert(table).on_conflict_do_nothing().returning(table.c.id),
                        [{n: getattr(c, n) for n in columns} for c in planned],
                    )
                ).all()
            )
            created = [c for c in planned if c.id in created_ids]
            opened = [c for c in created if c.status == "open"]
            if opened:
                await session.execute(
                    update(Clock)
                    .where(
                        Clock.lead_id.in_([c.lead_id for c in opened]),
                        Clock.status == "open",
                        Clock.id.not_in([c.id for c in opened]),
                    )
                    .values(status="reassigned", closed_at=func.now(), next_fire_at=None)
                )
                events.extend(sla_event(c, SlaStatus.STARTED, c.started_at) for c in opened)
                touched = await self._touched_before_opening(session, opened, events)
                created = [touched.get(c.id, c) for c in created]
            await self._publish(events)
        return created

    async def _touched_before_opening(
        self, session: AsyncSession, opened: list[Clock], events: list[SlaEvent]
    ) -> dict[str, Clock]:
        """Stop the new clocks whose lead was touched (as seen so far) after assignment;
        their events are appended to ``events``. Returns the touched clocks by id."""
        touches = (
            await session.execute(
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
            loaded = await session.get(Clock, clock.id)
            assert loaded is not None
            touched[clock.id] = loaded
            if event := self._apply_touch(loaded, min(times)):
                events.append(event)
        return touched

    async def contacted(self, activity: Activity) -> Clock | None:
        """Record a first touch. Returns the clock it changed; None for a duplicate
        activity, a touch with no clock (yet: it is kept for when the clock opens), or a
        clock already touched."""
        async with self._sessions.begin() as session:
            await _lock_lead(session, activity.lead_id)
            stored = await session.scalar(
                insert(Touch)
                .values(
                    activity_id=activity.activity_id,
                    lead_id=activity.lead_id,
                    rep_id=activity.rep_id,
                    assignment_id=activity.assignment_id,
                    occurred_at=activity.occurred_at,
                )
                .on_conflict_do_nothing()
                .returning(Touch.activity_id)
            )
            if stored is None:
                return None
            query = select(Clock).where(Clock.lead_id == activity.lead_id)
            if activity.assignment_id is not None:
                query = query.where(Clock.assignment_id == activity.assignment_id)
            else:
                query = query.where(Clock.started_at <= activity.occurred_at)
            clock = await session.scalar(
                query.order_by(Clock.started_at.desc()).limit(1).with_for_update()
            )
            if (
                clock is None
                or clock.status not in ("open", "breached")
                or clock.first_touch_at is not None
                or activity.occurred_at < clock.started_at
            ):
                return None
            event = self._apply_touch(clock, activity.occurred_at)
            if event is not None:
                await self._publish([event])
        return clock

    async def fire_due(self, now: datetime, limit: int = 1000) -> list[Fired]:
        """Publish what is due at ``now`` (``at_risk`` warnings, ``breached`` deadlines)
        for up to ``limit`` clocks, earliest first; the rows are skipped by other
        sweepers while this transaction holds them. One select, one publish batch and
        one update per call: the sweep keeps up with thousands of clocks a second."""
        fired: list[Fired] = []
        events: list[SlaEvent] = []
        changes: dict[str, list[Any]] = {k: [] for k in ("id", "w", "n", "s", "c")}
        async with self._sessions.begin() as session:
            due = (
                await session.execute(
                    select(*Clock.__table__.columns)
                    .where(Clock.status == "open", Clock.next_fire_at <= now)
                    .order_by(Clock.next_fire_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for clock in due:
                row: tuple[int, datetime | None, str, datetime | None]
                schedule = schedule_of(clock)
                fire = lifecycle.due(schedule, now)
                if fire is None:  # not due after all: re-sync its next fire time
                    row = (schedule.warnings_sent, schedule.next_fire_at(), "open", None)
                else:
                    breached = fire.status == SlaStatus.BREACHED
                    row = (
                        fire.warnings_sent,
                        fire.next_fire_at,
                        "breached" if breached else "open",
                        clock.deadline_at if breached else None,
                    )
                    events.append(sla_event(clock, fire.status, now, fire.fraction))
                    lateness = max(0.0, (now - fire.due_at).total_seconds())
                    fired.append(Fired(fire.status, lateness, clock.stage, clock.team))
                for key, value in zip(changes, (clock.id, *row), strict=True):
                    changes[key].append(value)
            if due:
                await session.execute(_SWEEP_UPDATE, changes)
            if events:
                await self._publish(events)
        return fired

    async def clocks_for(self, lead_id: str) -> list[Clock]:
        async with self._sessions() as session:
            return list(
                (
                    await session.scalars(
                        select(Clock).where(Clock.lead_id == lead_id).order_by(Clock.started_at)
                    )
                ).all()
            )

    async def open_count(self) -> int:
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(Clock).where(Clock.status == "open")
            )
            return int(count or 0)

    def _apply_touch(self, clock: Clock, touched_at: datetime) -> SlaEvent | None:
        """Record the first touch on ``clock`` (loaded in the session); the event to publish."""
        outcome = lifecycle.touch(clock.status, clock.started_at, clock.deadline_at, touched_at)
        clock.first_touch_at = touched_at
        clock.elapsed_seconds = outcome.elapsed_seconds
        clock.counted_seconds = self.policy.counted_seconds(
            clock.calendar, clock.started_at, touched_at
        )
        if outcome.status is None:
            return None
        clock.next_fire_at = None
        clock.status = outcome.status.value
        clock.closed_at = touched_at if outcome.status == SlaStatus.MET else clock.deadline_at
        return sla_event(clock, outcome.status, touched_at)


async def _lock_lead(session: AsyncSession, lead_id: str) -> None:
    """Serialise opening clocks and recording touches per lead (until commit)."""
    await _lock_leads(session, [lead_id])


async def _lock_leads(session: AsyncSession, lead_ids: Sequence[str]) -> None:
    """Take the leads' advisory locks in one sorted order, so batches cannot deadlock."""
    await session.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtextextended('sla:' || k, 0)) "
            "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k"
        ),
        {"keys": sorted(lead_ids)},
    )
