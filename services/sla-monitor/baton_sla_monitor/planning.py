"""What a clock is and what happens to it, decided without I/O.

The SLA policy turns an assignment or a qualifying transition into the clock rows it
opens; a first touch (or the assignment an assign clock waits for) is applied to a
clock loaded by the caller, and an attempts clock is given the contact attempts that
count for it; every change becomes the ``SlaEvent`` to publish. The shell
(:mod:`baton_sla_monitor.writes`, :mod:`baton_sla_monitor.attempts`,
:mod:`baton_sla_monitor.sweep`) loads and stores the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

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
from baton_sla_monitor.tables import Clock

FIRST_TOUCH, ASSIGN = SlaMeasure.FIRST_TOUCH.value, SlaMeasure.ASSIGN.value
ATTEMPTS = SlaMeasure.ATTEMPTS.value
OPEN_OR_BREACHED = ("open", "breached")

# The columns an event carries from its clock unchanged.
_EVENT_COLUMNS = (
    "lead_id",
    "rep_id",
    "assignment_id",
    "transition_id",
    "started_at",
    "deadline_at",
    "team",
    "stage",
    "express",
    "policy_version",
    "window_seconds",
    "system_delay_seconds",
    "assign_target_seconds",
    "attempts_required",
    "attempts_made",
)


def sla_event(
    clock: Any, status: SlaStatus, at: datetime, fraction: float | None = None
) -> SlaEvent:
    """The event of ``clock`` (an ORM object or a row of its columns) turning ``status``
    at ``at``; its id is deterministic, so a re-published event is a duplicate."""
    suffix = () if fraction is None else (f"{fraction:g}",)
    touched = status in (SlaStatus.MET, SlaStatus.BREACHED)
    return SlaEvent(
        **{name: getattr(clock, name) for name in _EVENT_COLUMNS},
        event_id=stable_id(clock.id, status.value, *suffix),
        clock_id=clock.id,
        status=status,
        measure=SlaMeasure(clock.measure),
        at=at,
        elapsed_seconds=clock.elapsed_seconds if touched else None,
        counted_seconds=clock.counted_seconds if touched else None,
        warning_fraction=fraction,
    )


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


def assignment_clock(policy: SlaPolicy, assignment: Assignment) -> Clock:
    """The first-touch clock an assignment opens: the window of the assignment's stage
    (an SDR task for an MQL: the MQL window)."""
    stage = assignment.stage.value
    plan = policy.plan(assignment.assigned_at, stage, assignment.express, assignment.pool)
    return _assignment_clock(
        policy, plan, assignment, id=stable_id("clock", assignment.assignment_id)
    )


def attempts_clock(policy: SlaPolicy, assignment: Assignment) -> Clock | None:
    """The attempts clock an assignment opens when the policy asks its stage (and team)
    for a minimum number of contact attempts; None when it does not."""
    planned = policy.plan_attempts(
        assignment.assigned_at, assignment.stage.value, assignment.express, assignment.pool
    )
    if planned is None:
        return None
    rule, plan = planned
    return _assignment_clock(
        policy,
        plan,
        assignment,
        id=stable_id("clock", ATTEMPTS, assignment.assignment_id),
        measure=ATTEMPTS,
        attempts_required=rule.count,
        attempts_made=0,
    )


def _assignment_clock(
    policy: SlaPolicy, plan: ClockPlan, assignment: Assignment, **columns: Any
) -> Clock:
    """A clock an assignment opens at ``assigned_at``, for its rep and team."""
    delay = (assignment.assigned_at - assignment.qualified_at).total_seconds()
    return _planned_clock(
        policy,
        plan,
        **{"measure": FIRST_TOUCH, **columns},
        transition_id=assignment.transition_id,
        assignment_id=assignment.assignment_id,
        lead_id=assignment.lead_id,
        rep_id=assignment.rep_id,
        team=assignment.pool,
        stage=assignment.stage.value,
        express=assignment.express,
        qualified_at=assignment.qualified_at,
        started_at=assignment.assigned_at,
        system_delay_seconds=max(0.0, delay),
        assign_target_seconds=policy.assign_target_seconds(assignment.pool),
    )


def transition_clocks(policy: SlaPolicy, transition: Transition) -> list[Clock]:
    """The clocks a transition opens: an ``assign`` clock when its stage is in the
    policy's ``assign_stages``; for an MQL, the MQL first-touch clock (no rep: the lead
    is due a first touch within the MQL window whether or not an SDR task follows; an
    SDR task's own clock replaces it)."""
    stage = transition.to_stage
    if stage not in (Stage.SQL, Stage.MQL):
        return []
    clocks = []
    if stage.value in policy.assign_stages:
        plan = policy.plan_assign(transition.occurred_at, stage.value, transition.express)
        clocks.append(_transition_clock(policy, transition, ASSIGN, plan, plan.window_seconds))
    if stage == Stage.MQL:
        plan = policy.plan(transition.occurred_at, stage.value, False)
        target = policy.assign_target_seconds()
        clocks.append(_transition_clock(policy, transition, FIRST_TOUCH, plan, target))
    return clocks


def _transition_clock(
    policy: SlaPolicy,
    transition: Transition,
    measure: str,
    plan: ClockPlan,
    assign_target: float,
) -> Clock:
    """A clock opened by a transition: no rep, team or assignment yet."""
    return _planned_clock(
        policy,
        plan,
        id=stable_id("clock", measure, transition.transition_id),
        measure=measure,
        transition_id=transition.transition_id,
        assignment_id=None,
        lead_id=transition.lead_id,
        rep_id=None,
        team=None,
        stage=transition.to_stage.value,
        express=transition.express and measure == ASSIGN,
        qualified_at=transition.occurred_at,
        started_at=transition.occurred_at,
        system_delay_seconds=None,
        assign_target_seconds=assign_target,
    )


def _planned_clock(policy: SlaPolicy, plan: ClockPlan, **columns: Any) -> Clock:
    return Clock(policy_version=policy.version, **columns, **plan_columns(plan))


def apply_touch(policy: SlaPolicy, clock: Clock, touched_at: datetime) -> SlaEvent | None:
    """Record the first touch on ``clock``; the event to publish, if any."""
    outcome = lifecycle.touch(clock.status, clock.started_at, clock.deadline_at, touched_at)
    clock.first_touch_at = touched_at
    clock.elapsed_seconds = outcome.elapsed_seconds
    clock.counted_seconds = policy.counted_seconds(clock.calendar, clock.started_at, touched_at)
    if outcome.status is None:
        return None
    clock.next_fire_at = None
    clock.status = outcome.status.value
    clock.closed_at = touched_at if outcome.status == SlaStatus.MET else clock.deadline_at
    return sla_event(clock, outcome.status, touched_at)


def stop_assign(
    policy: SlaPolicy, clock: Clock, assigned_at: datetime, team: str | None
) -> SlaEvent | None:
    """Stop an assign clock at its assignment (the system delay is the time it ran);
    the event to publish, if any."""
    clock.team = team
    event = apply_touch(policy, clock, assigned_at)
    clock.system_delay_seconds = clock.elapsed_seconds
    if event is not None:
        event = event.model_copy(update={"system_delay_seconds": clock.elapsed_seconds})
    return event


def close(clock: Clock, status: str, at: datetime) -> None:
    """Close ``clock`` as ``status`` at ``at``: nothing more fires on it."""
    clock.status, clock.closed_at, clock.next_fire_at = status, at, None


def clock_touched_by(activity: Activity | Attempt, clocks: Sequence[Clock]) -> Clock | None:
    """The clock a touch is for: its assignment's, else the newest started by then
    (``clocks`` are in start order)."""
    if activity.assignment_id is not None:
        matching = [c for c in clocks if c.assignment_id == activity.assignment_id]
    else:
        matching = [c for c in clocks if c.started_at <= activity.occurred_at]
    return matching[-1] if matching else None


class Attempt(Protocol):
    """A stored ``contacted`` activity, as far as attempts care."""

    @property
    def assignment_id(self) -> str | None: ...
    @property
    def occurred_at(self) -> datetime: ...


def attempts_by_clock(
    clocks: Sequence[Clock], attempts: Sequence[Attempt]
) -> dict[str, list[datetime]]:
    """When each of a lead's attempts clocks (in start order) was contacted: an attempt
    counts for its assignment's clock, else for the newest clock started by then."""
    times: dict[str, list[datetime]] = {c.id: [] for c in clocks}
    for attempt in attempts:
        clock = clock_touched_by(attempt, clocks)
        if clock is not None and attempt.occurred_at >= clock.started_at:
            times[clock.id].append(attempt.occurred_at)
    return times


def count_attempts(policy: SlaPolicy, clock: Clock, times: Sequence[datetime]) -> SlaEvent | None:
    """Set an open or breached attempts clock's count from the times of its attempts
    (every one seen, any order; those by the deadline count). Reaching the required
    count makes it ``met`` at the attempt that reached it (on a breached clock: the
    correction, attempts made in time but consumed late); the event to publish, if any."""
    if clock.status not in OPEN_OR_BREACHED:
        return None
    counted = sorted(t for t in times if clock.started_at <= t <= clock.deadline_at)
    clock.attempts_made = len(counted)
    clock.first_touch_at = counted[0] if counted else None
    required = max(1, clock.attempts_required or 1)
    if len(counted) < required:
        return None
    reached = counted[required - 1]
    clock.elapsed_seconds = (reached - clock.started_at).total_seconds()
    clock.counted_seconds = policy.counted_seconds(clock.calendar, clock.started_at, reached)
    close(clock, SlaStatus.MET.value, reached)
    return sla_event(clock, SlaStatus.MET, reached)
