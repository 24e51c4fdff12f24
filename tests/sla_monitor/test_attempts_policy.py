"""Minimum contact attempts, decided without I/O: the policy's business-day windows and
how the attempts a lead was contacted count for its attempts clocks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from baton_shared.schemas import Assignment, SlaMeasure, SlaStatus, Stage
from baton_shared.sla_policy import PolicyError, load_policy, parse_policy
from baton_sla_monitor.planning import attempts_by_clock, attempts_clock, count_attempts

LONDON = ZoneInfo("Europe/London")

POLICY = parse_policy(
    """
name: attempts
attempts:
  sql: {count: 6, within_business_days: 10}
calendars:
  office:
    timezone: Europe/London
    hours: ["09:00-12:30", "13:30-17:30"]
    holidays: [2026-12-25, 2026-12-28]
teams:
  office: {calendar: office}
  closers:
    attempts: {sql: {count: 8, within_business_days: 5}, mql: {count: 2, within_business_days: 1}}
"""
)


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)  # type: ignore[misc]


def assignment(at: datetime, team: str | None = "office", stage: Stage = Stage.SQL) -> Assignment:
    return Assignment(
        assignment_id=uuid.uuid4().hex,
        transition_id=uuid.uuid4().hex,
        lead_id="lead-1",
        rep_id="rep-1",
        strategy="round_robin",
        express=False,
        qualified_at=at,
        assigned_at=at,
        pool=team,
        stage=stage,
    )


def test_ten_business_days_from_a_tuesday_afternoon_end_two_weeks_later_same_time() -> None:
    rule, plan = POLICY.plan_attempts(london(2026, 1, 6, 14, 0), "sql", False, "office") or ()
    assert (rule.count, rule.within_business_days) == (6, 10)
    assert plan.deadline_at == london(2026, 1, 20, 14, 0)
    assert plan.window_seconds == 10 * 7.5 * 3600  # ten working days of the calendar
    assert [(w.fraction, w.at) for w in plan.warnings] == [
        (0.5, london(2026, 1, 13, 14, 0)),  # five working days in
        (0.8, london(2026, 1, 16, 14, 0)),  # eight
    ]


def test_business_days_skip_weekends_and_holidays() -> None:
    # Saturday: counting starts Monday 09:00, the tenth working day ends at its close.
    _, plan = POLICY.plan_attempts(london(2026, 1, 10, 11, 0), "sql", False, "office") or ()
    assert plan.deadline_at == london(2026, 1, 23, 17, 30)
    # Christmas Eve is the first; 25th and 28th are holidays: the tenth is 8 January.
    _, plan = POLICY.plan_attempts(london(2026, 12, 24, 9, 0), "sql", False, "office") or ()
    assert plan.deadline_at == london(2027, 1, 8, 17, 30)


def test_without_a_calendar_a_business_day_is_24_hours() -> None:
    at = datetime(2026, 1, 6, 14, 0, tzinfo=UTC)
    _, plan = POLICY.plan_attempts(at, "sql", False, None) or ()
    assert plan.deadline_at == at + timedelta(days=10) and plan.calendar is None


def test_a_team_overrides_the_rule_and_a_stage_without_one_has_no_attempts_clock() -> None:
    at = datetime(2026, 1, 6, 14, 0, tzinfo=UTC)
    rule, plan = POLICY.plan_attempts(at, "sql", False, "closers") or ()
    assert (rule.count, plan.deadline_at) == (8, at + timedelta(days=5))
    assert POLICY.plan_attempts(at, "mql", False, "closers") is not None
    assert POLICY.plan_attempts(at, "mql", False, "office") is None
    assert load_policy().plan_attempts(at, "sql", False) is None  # off in the shipped policy
    assert attempts_clock(load_policy(), assignment(at)) is None


@pytest.mark.parametrize(
    "attempts",
    ["{sql: {count: 0, within_business_days: 10}}", "{sql: {count: 6}}", "{sale: {count: 1}}"],
)
def test_a_bad_attempts_rule_is_refused(attempts: str) -> None:
    with pytest.raises(PolicyError, match="attempts"):
        parse_policy(f"name: bad\nattempts: {attempts}\n")


@dataclass
class Stored:
    assignment_id: str | None
    occurred_at: datetime


def test_attempts_count_for_their_assignment_or_the_newest_clock_started_by_then() -> None:
    t0 = london(2026, 1, 6, 10, 0)
    old = attempts_clock(POLICY, assignment(t0))
    new = attempts_clock(POLICY, assignment(t0 + timedelta(days=1)))
    assert old is not None and new is not None
    hour = timedelta(hours=1)
    times = attempts_by_clock(
        [old, new],
        [
            Stored(None, t0 + hour),  # before the new clock: the old one's
            Stored(None, t0 + timedelta(days=1) + hour),  # the newest clock's
            Stored(old.assignment_id, t0 + timedelta(days=2)),  # named: the old one's
            Stored(None, t0 - hour),  # before any clock: nobody's
        ],
    )
    assert times == {
        old.id: [t0 + hour, t0 + timedelta(days=2)],
        new.id: [t0 + timedelta(days=1) + hour],
    }


def test_the_sixth_attempt_by_the_deadline_meets_the_clock_at_that_attempt() -> None:
    t0 = london(2026, 1, 6, 10, 0)
    clock = attempts_clock(POLICY, assignment(t0))
    assert clock is not None
    assert (clock.measure, clock.attempts_required, clock.attempts_made) == ("attempts", 6, 0)
    calls = [t0 + timedelta(days=d) for d in (5, 0, 1, 2, 3)]
    assert count_attempts(POLICY, clock, calls) is None
    assert (clock.status, clock.attempts_made, clock.first_touch_at) == ("open", 5, t0)

    late = clock.deadline_at + timedelta(seconds=1)  # after the deadline: not counted
    assert count_attempts(POLICY, clock, [*calls, late]) is None
    event = count_attempts(POLICY, clock, [*calls, late, t0 + timedelta(days=4)])

    assert event is not None and event.status == SlaStatus.MET
    assert event.measure == SlaMeasure.ATTEMPTS
    assert (event.attempts_made, event.attempts_required) == (6, 6)
    assert event.at == t0 + timedelta(days=5) == clock.closed_at  # the sixth in time
    assert count_attempts(POLICY, clock, [*calls, t0]) is None  # met: nothing more


def test_attempts_made_in_time_but_consumed_after_the_breach_correct_it_to_met() -> None:
    t0 = london(2026, 1, 6, 10, 0)
    clock = attempts_clock(POLICY, assignment(t0))
    assert clock is not None
    clock.status = "breached"
    event = count_attempts(POLICY, clock, [t0 + timedelta(hours=h) for h in range(6)])
    assert event is not None and (event.status, clock.status) == (SlaStatus.MET, "met")
