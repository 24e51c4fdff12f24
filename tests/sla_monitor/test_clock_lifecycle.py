"""What an open clock fires next and what a first touch does to it. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from baton_shared.schemas import SlaStatus
from baton_sla_monitor.lifecycle import Schedule, due, touch

T0 = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)
SCHEDULE = Schedule(
    deadline_at=T0 + WINDOW,
    warn_ats=(T0 + timedelta(minutes=5), T0 + timedelta(minutes=8)),
    warn_fractions=(0.5, 0.8),
)


def after(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_nothing_is_due_before_the_first_warning() -> None:
    assert due(SCHEDULE, after(4.99)) is None
    assert SCHEDULE.next_fire_at() == after(5)


def test_first_warning_then_second_then_breach() -> None:
    first = due(SCHEDULE, after(5))
    assert first is not None
    assert (first.status, first.fraction, first.warnings_sent) == (SlaStatus.AT_RISK, 0.5, 1)
    assert first.next_fire_at == after(8)

    state = Schedule(SCHEDULE.deadline_at, SCHEDULE.warn_ats, SCHEDULE.warn_fractions, 1)
    assert due(state, after(7)) is None
    second = due(state, after(8.1))
    assert second is not None and (second.status, second.fraction) == (SlaStatus.AT_RISK, 0.8)
    assert second.next_fire_at == SCHEDULE.deadline_at

    state = Schedule(SCHEDULE.deadline_at, SCHEDULE.warn_ats, SCHEDULE.warn_fractions, 2)
    breach = due(state, after(10))
    assert breach is not None and breach.status == SlaStatus.BREACHED
    assert breach.next_fire_at is None and breach.due_at == SCHEDULE.deadline_at


def test_deadline_passed_while_down_breaches_without_stale_warnings() -> None:
    fire = due(SCHEDULE, after(60))
    assert fire is not None and fire.status == SlaStatus.BREACHED


def test_two_passed_warnings_fire_only_the_later_one() -> None:
    fire = due(SCHEDULE, after(9))
    assert fire is not None
    assert (fire.status, fire.fraction, fire.warnings_sent) == (SlaStatus.AT_RISK, 0.8, 2)
    assert fire.due_at == after(8)


def test_policy_without_warnings_only_breaches() -> None:
    bare = Schedule(T0 + WINDOW, (), ())
    assert due(bare, after(9)) is None
    fire = due(bare, after(10))
    assert fire is not None and fire.status == SlaStatus.BREACHED


@settings(max_examples=100, deadline=None, database=None)
@given(ticks=st.lists(st.floats(min_value=0, max_value=30), min_size=1, max_size=20))
def test_any_sweep_timing_fires_each_warning_at_most_once_and_breach_last(
    ticks: list[float],
) -> None:
    state, fired = SCHEDULE, []
    for minute in sorted(ticks):
        fire = due(state, after(minute))
        if fire is None:
            continue
        fired.append(fire)
        if fire.next_fire_at is None:
            break
        state = Schedule(
            state.deadline_at, state.warn_ats, state.warn_fractions, fire.warnings_sent
        )
    fractions = [f.fraction for f in fired if f.status == SlaStatus.AT_RISK]
    assert fractions == sorted(set(fractions))
    assert [f.status for f in fired].count(SlaStatus.BREACHED) <= 1
    assert all(f.status == SlaStatus.AT_RISK for f in fired[:-1])
    assert (SlaStatus.BREACHED in [f.status for f in fired]) == (max(ticks) >= 10)


def test_touch_by_the_deadline_is_met_with_wall_clock_elapsed() -> None:
    outcome = touch("open", T0, T0 + WINDOW, after(3))
    assert outcome.status == SlaStatus.MET and outcome.elapsed_seconds == 180
    assert touch("open", T0, T0 + WINDOW, T0 + WINDOW).status == SlaStatus.MET


def test_touch_after_the_deadline_before_the_sweep_fired_is_a_breach() -> None:
    assert touch("open", T0, T0 + WINDOW, after(11)).status == SlaStatus.BREACHED


def test_late_arriving_touch_that_was_in_time_corrects_a_breach_to_met() -> None:
    outcome = touch("breached", T0, T0 + WINDOW, after(2))
    assert outcome.status == SlaStatus.MET and outcome.elapsed_seconds == 120


def test_touch_after_a_breach_is_recorded_without_an_event() -> None:
    outcome = touch("breached", T0, T0 + WINDOW, after(45))
    assert outcome.status is None and outcome.elapsed_seconds == 45 * 60
