"""Durable clocks in PostgreSQL. Each state change is decided (by the pure
``policy``/``lifecycle``) in a transaction and published before that transaction
commits, so a crash re-publishes (same deterministic ``event_id``) rather than
losing an event.

:meth:`ClockStore.apply` takes a consumer batch in one transaction, in causal order:

1. transitions: a qualifying one opens an ``assign`` clock (stage in the policy's
   ``assign_stages``) and, for an MQL, the MQL first-touch clock; any transition
   supersedes the lead's older open transition-opened clocks;
2. assignments: each opens a ``first_touch`` clock (closing the lead's older open one
   as ``reassigned``) and stops the ``assign`` clock of its transition;
3. ``contacted`` activities: the first touch stops the lead's ``first_touch`` clock.

Every step is a handful of multi-row statements whatever the batch size, and works in
any arrival order (an assignment before its transition, a touch before its clock).

Two monitors are safe: the sweep takes due clocks with ``FOR UPDATE SKIP LOCKED``
(each due clock goes to exactly one sweeper); a batch takes its leads' advisory locks
(in one sorted order, so batches cannot deadlock), so records of the same lead handled
at once by two monitors still see each other; stopping a clock locks its row, so a
clock is met or breached once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_shared.ids import stable_id
from baton_shared.schemas import (
    Activity,
    Assignment,
    SlaEvent,
    SlaMeasure,
    SlaStatus,
    Stage,
    Transition,
)
from baton_shared.sla_policy import ClockPlan, SlaPolicy
from baton_sla_monitor import lifecycle
from baton_sla_monitor.tables import Clock, Touch

Publish = Callable[[Sequence[SlaEvent]], Awaitable[None]]

_SWEEP_UPDATE = text(
    "UPDATE sla.clocks AS c SET warnings_sent = u.w, next_fire_at = u.n, status = u.s, "
    "closed_at = COALESCE(u.c, c.closed_at) "
    "FROM unnest(CAST(:id AS text[]), CAST(:w AS int[]), CAST(:n AS timestamptz[]), "
    "CAST(:s AS text[]), CAST(:c AS timestamptz[])) AS u(id, w, n, s, c) "
    "WHERE c.id = u.id"
)

FIRST_TOUCH, ASSIGN = SlaMeasure.FIRST_TOUCH.value, SlaMeasure.ASSIGN.value
OPEN_OR_BREACHED = ("open", "breached")

_SUPERSEDE = text(
    "UPDATE sla.clocks AS c SET status = 'superseded', closed_at = u.at, next_fire_at = NULL "
    "FROM unnest(CAST(:lead AS text[]), CAST(:at AS timestamptz[])) AS u(lead, at) "
    "WHERE c.lead_id = u.lead AND c.status = 'open' AND c.assignment_id IS NULL "
    "AND c.started_at < u.at"
)


@dataclass
class Applied:
    """What one batch changed, for metrics."""

    opened: list[Clock] = field(default_factory=list)  # first-touch clocks of assignments
    touched: list[Clock] = field(default_factory=list)  # first touches recorded
    assigned: list[Clock] = field(default_factory=list)  # assign clocks stopped


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
        measure=SlaMeasure(clock.measure),
        transition_id=clock.transition_id,
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


def plan_columns(plan: ClockPlan) -> dict[str, Any]:
    """The columns of a clock opening now that its plan decides: window, deadline and
    warnings, none sent yet, the first warning (or the deadline) next to fire."""
    return {
        "calendar": plan.calendar,
        "window_seconds": plan.window_seconds,
        "deadline_at": plan.deadline_at,
        "warn_ats": [w.at for w in plan.warnings],
        "warn_fractions": [w.fraction for w in plan.warnings],
        "warnings_sent": 0,
        "next_fire_at": plan.warnings[0].at if plan.warnings else plan.deadline_at,
        "status": "open",
    }


class ClockStore:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], policy: SlaPolicy, publish: Publish
    ):
        self._sessions, self.policy, self._publish = sessions, policy, publish

    def new_clock(self, assignment: Assignment) -> Clock:
        """The first-touch clock an assignment opens, as the policy plans it (no I/O):
        the window of the assignment's stage (an SDR task for an MQL: the MQL window)."""
        stage = assignment.stage.value
        plan = self.policy.plan(assignment.assigned_at, stage, assignment.express, assignment.pool)
        delay = (assignment.assigned_at - assignment.qualified_at).total_seconds()
        return Clock(
            id=stable_id("clock", assignment.assignment_id),
            measure=FIRST_TOUCH,
            transition_id=assignment.transition_id,
            assignment_id=assignment.assignment_id,
            lead_id=assignment.lead_id,
            rep_id=assignment.rep_id,
            team=assignment.pool,
            stage=stage,
            express=assignment.express,
            policy_version=self.policy.version,
            qualified_at=assignment.qualified_at,
            started_at=assignment.assigned_at,
            system_delay_seconds=max(0.0, delay),
            assign_target_seconds=self.policy.assign_target_seconds(assignment.pool),
            **plan_columns(plan),
        )

    def transition_clocks(self, transition: Transition) -> list[Clock]:
        """The clocks a transition opens (no I/O): an ``assign`` clock when its stage is
        in the policy's ``assign_stages``; for an MQL, the MQL first-touch clock (no rep:
        the lead is due a first touch within the MQL window whether or not an SDR task
        follows; an SDR task's own clock replaces it)."""
        stage = transition.to_stage
        if stage not in (Stage.SQL, Stage.MQL):
            return []
        clocks = []
        if stage.value in self.policy.assign_stages:
            plan = self.policy.plan_assign(transition.occurred_at, stage.value, transition.express)
            clocks.append(self._transition_clock(transition, ASSIGN, plan, plan.window_seconds))
        if stage == Stage.MQL:
            plan = self.policy.plan(transition.occurred_at, stage.value, False)
            clocks.append(
                self._transition_clock(
                    transition, FIRST_TOUCH, plan, self.policy.assign_target_seconds()
                )
            )
        return clocks

    def _transition_clock(
        self, transition: Transition, measure: str, plan: ClockPlan, assign_target: float
    ) -> Clock:
        return Clock(
            id=stable_id("clock", measure, transition.transition_id),
            measure=measure,
            transition_id=transition.transition_id,
            assignment_id=None,
            lead_id=transition.lead_id,
            rep_id=None,
            team=None,
            stage=transition.to_stage.value,
            express=transition.express and measure == ASSIGN,
            policy_version=self.policy.version,
            qualified_at=transition.occurred_at,
            started_at=transition.occurred_at,
            system_delay_seconds=None,
            assign_target_seconds=assign_target,
            **plan_columns(plan),
        )

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
    ) -> Applied:
        """One consumer batch in one transaction (transitions, then assignments, then
        ``contacted`` touches); every event goes out before it commits. Idempotent: a
        re-delivered batch changes and publishes nothing new. Keep batches to a few
        thousand records: each lead takes an advisory lock."""
        applied = Applied()
        leads = {r.lead_id for r in (*transitions, *assignments, *touches)}
        if not leads:
            return applied
        events: list[SlaEvent] = []
        async with self._sessions.begin() as session:
            await _lock_leads(session, sorted(leads))
            if transitions:
                await self._open_from_transitions(session, transitions, events)
            if assignments:
                await self._open_from_assignments(session, assignments, events, applied)
            if touches:
                await self._record_touches(session, touches, events, applied)
            if events:
                await self._publish(events)
        return applied

    async def _open_from_transitions(
        self, session: AsyncSession, transitions: Sequence[Transition], events: list[SlaEvent]
    ) -> None:
        """Supersede the leads' older open transition-opened clocks, then open the clocks
        of the new transitions. A transition consumed after its assignment opens an assign
        clock that stops at once, and an MQL clock that is already replaced."""
        newest: dict[str, datetime] = {}
        for t in transitions:
            newest[t.lead_id] = max(t.occurred_at, newest.get(t.lead_id, t.occurred_at))
        await session.execute(_SUPERSEDE, {"lead": list(newest), "at": list(newest.values())})
        unique = {t.transition_id: t for t in transitions}
        planned = [c for t in unique.values() for c in self.transition_clocks(t)]
        if not planned:
            return
        ids = {c.transition_id for c in planned}
        assigned_at: dict[str, datetime] = dict(
            (
                await session.execute(
                    select(Clock.transition_id, func.min(Clock.started_at))
                    .where(
                        Clock.transition_id.in_(ids),
                        Clock.measure == FIRST_TOUCH,
                        Clock.assignment_id.is_not(None),
                    )
                    .group_by(Clock.transition_id)
                )
            ).all()
        )
        latest = await _latest_first_touch(session, {c.lead_id for c in planned})
        started: dict[str, list[SlaEvent]] = {}
        for clock in planned:
            if clock.started_at < newest[clock.lead_id]:
                _close(clock, "superseded", newest[clock.lead_id])
            elif clock.measure == FIRST_TOUCH and (
                clock.transition_id in assigned_at
                or latest.get(clock.lead_id, clock.started_at) > clock.started_at
            ):
                _close(clock, "reassigned", clock.started_at)
            else:
                # Decided before the insert, so a late transition costs no extra round trip.
                started[clock.id] = [sla_event(clock, SlaStatus.STARTED, clock.started_at)]
                if clock.measure == ASSIGN and clock.transition_id in assigned_at:
                    stop = self._stop_assign(clock, assigned_at[clock.transition_id], None)
                    started[clock.id].extend([stop] if stop else [])
        created = await _insert_new(session, planned)
        for clock in created:
            events.extend(started.get(clock.id, ()))
        mql = [c for c in created if c.measure == FIRST_TOUCH and c.status == "open"]
        if mql:
            await self._touched_before_opening(session, mql, events)

    async def _open_from_assignments(
        self,
        session: AsyncSession,
        assignments: Sequence[Assignment],
        events: list[SlaEvent],
        applied: Applied,
    ) -> None:
        """Open the first-touch clocks of the assignments (``started``), closing each
        lead's older open first-touch clock as ``reassigned``, and stop the assign clocks
        of their transitions.

        An assignment older than a first-touch clock already seen for its lead (out of
        order) is stored closed as ``reassigned``. A touch seen before its assignment
        stops the clock at once.
        """
        unique = {c.id: c for c in map(self.new_clock, assignments)}  # a batch may repeat one
        planned = sorted(unique.values(), key=lambda c: c.started_at)
        latest = await _latest_first_touch(session, {c.lead_id for c in planned})
        newest_in_batch = {c.lead_id: c.id for c in planned}  # sorted: the last one wins
        for clock in planned:
            seen = latest.get(clock.lead_id)
            if newest_in_batch[clock.lead_id] != clock.id or (
                seen is not None and seen > clock.started_at
            ):
                _close(clock, "reassigned", clock.started_at)
        created = await _insert_new(session, planned)
        opened = [c for c in created if c.status == "open"]
        if opened:
            await session.execute(
                update(Clock)
                .where(
                    Clock.lead_id.in_([c.lead_id for c in opened]),
                    Clock.measure == FIRST_TOUCH,
                    Clock.status == "open",
                    Clock.id.not_in([c.id for c in opened]),
                )
                .values(status="reassigned", closed_at=func.now(), next_fire_at=None)
            )
            events.extend(sla_event(c, SlaStatus.STARTED, c.started_at) for c in opened)
            touched = await self._touched_before_opening(session, opened, events)
            created = [touched.get(c.id, c) for c in created]
        applied.opened.extend(created)
        await self._stop_assign_clocks(session, assignments, events, applied)

    async def _stop_assign_clocks(
        self,
        session: AsyncSession,
        assignments: Sequence[Assignment],
        events: list[SlaEvent],
        applied: Applied,
    ) -> None:
        """The first assignment of a transition stops its assign clock: ``met`` by the
        target, else ``breached`` (or, on a clock the sweep already breached, a ``met``
        correction when the assignment was in time but consumed late)."""
        first: dict[str, Assignment] = {}
        for a in sorted(assignments, key=lambda a: a.assigned_at, reverse=True):
            first[a.transition_id] = a
        clocks = (
            await session.scalars(
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
            applied.assigned.append(clock)
            if event := self._stop_assign(clock, assignment.assigned_at, assignment.pool):
                events.append(event)

    def _stop_assign(
        self, clock: Clock, assigned_at: datetime, team: str | None
    ) -> SlaEvent | None:
        """Stop an assign clock at its assignment; the event to publish."""
        clock.team = team
        event = self._apply_touch(clock, assigned_at)
        clock.system_delay_seconds = clock.elapsed_seconds
        if event is not None:
            event = event.model_copy(update={"system_delay_seconds": clock.elapsed_seconds})
        return event

    async def _touched_before_opening(
        self, session: AsyncSession, opened: list[Clock], events: list[SlaEvent]
    ) -> dict[str, Clock]:
        """Stop the new first-touch clocks whose lead was touched (as seen so far) after
        they started; their events are appended to ``events``. Returns the touched clocks
        by id."""
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

    async def _record_touches(
        self,
        session: AsyncSession,
        activities: Sequence[Activity],
        events: list[SlaEvent],
        applied: Applied,
    ) -> None:
        """Store the touches (once per activity id) and stop the first-touch clock each
        new one is for: its assignment's, else the lead's latest started by then. A
        duplicate, a touch with no clock (yet), or one on a clock already touched
        changes nothing."""
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
                await session.scalars(
                    insert(Touch)
                    .values(list(rows.values()))
                    .on_conflict_do_nothing()
                    .returning(Touch.activity_id)
                )
            ).all()
        )
        new = sorted(
            (a for a in {a.activity_id: a for a in activities}.values() if a.activity_id in stored),
            key=lambda a: a.occurred_at,
        )
        if not new:
            return
        by_lead: dict[str, list[Clock]] = defaultdict(list)
        for clock in (
            await session.scalars(
                select(Clock)
                .where(Clock.lead_id.in_({a.lead_id for a in new}), Clock.measure == FIRST_TOUCH)
                .order_by(Clock.started_at, Clock.id)
                .with_for_update()
            )
        ).all():
            by_lead[clock.lead_id].append(clock)
        for activity in new:
            clock = _clock_touched_by(activity, by_lead[activity.lead_id])
            if (
                clock is None
                or clock.status not in OPEN_OR_BREACHED
                or clock.first_touch_at is not None
                or activity.occurred_at < clock.started_at
            ):
                continue
            applied.touched.append(clock)
            if event := self._apply_touch(clock, activity.occurred_at):
                events.append(event)

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
        counts = dict.fromkeys((FIRST_TOUCH, ASSIGN), 0)
        counts.update({measure: int(n) for measure, n in rows})
        return counts

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


async def _latest_first_touch(session: AsyncSession, leads: Iterable[str]) -> dict[str, datetime]:
    """When each lead's newest first-touch clock started."""
    rows = await session.execute(
        select(Clock.lead_id, func.max(Clock.started_at))
        .where(Clock.lead_id.in_(list(leads)), Clock.measure == FIRST_TOUCH)
        .group_by(Clock.lead_id)
    )
    return dict(rows.all())


async def _insert_new(session: AsyncSession, planned: Sequence[Clock]) -> list[Clock]:
    """Insert the planned clocks in one multi-row statement; the ones that were new."""
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
    return [c for c in planned if c.id in created_ids]


def _close(clock: Clock, status: str, at: datetime) -> None:
    clock.status, clock.closed_at, clock.next_fire_at = status, at, None


def _clock_touched_by(activity: Activity, clocks: Sequence[Clock]) -> Clock | None:
    """The clock a touch is for: its assignment's, else the newest started by then
    (``clocks`` are in start order)."""
    if activity.assignment_id is not None:
        matching = [c for c in clocks if c.assignment_id == activity.assignment_id]
    else:
        matching = [c for c in clocks if c.started_at <= activity.occurred_at]
    return matching[-1] if matching else None
