"""SLA policy, pure: windows per priority and team, warnings at fractions of the window,
business-hours calendars (weekends, DST, holidays), the versioned policy file."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baton_shared.business_hours import BusinessCalendar, CalendarError
from baton_shared.sla_policy import PolicyError, Priority, load_policy, parse_policy
from baton_sla_monitor.config import SlaSettings

ASSIGNED = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)  # a Monday
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS_9_TO_5 = BusinessCalendar(NEW_YORK, frozenset(range(5)), ((9 * 60, 17 * 60),))

OFFICE_POLICY = """
name: office-hours
warn_at_fractions: [0.8, 0.5]
first_touch_seconds: {express_sql: 300, sql: 3600, mql: 86400}
calendars:
  ny:
    timezone: America/New_York
    working_days: [mon, tue, wed, thu, fri]
    hours: ["09:00-17:00"]
    holidays: [2025-12-25]
teams:
  east:
    calendar: ny
    first_touch_seconds: {sql: 7200}
    assign_seconds: 30
"""


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)  # type: ignore[misc]


# --- windows -------------------------------------------------------------------------


def test_shipped_policy_has_the_documented_default_windows() -> None:
    policy = load_policy()
    assert policy.version.startswith("baton-default@")
    assert (policy.first_touch_seconds.express_sql, policy.first_touch_seconds.sql) == (300, 3600)
    assert policy.first_touch_seconds.mql == 86_400
    assert policy.warn_at_fractions == [0.5, 0.8]
    assert policy.assign_seconds == 60


def test_express_leads_are_due_sooner_than_sql_and_sql_sooner_than_mql() -> None:
    policy = load_policy()
    express = policy.plan(ASSIGNED, "sql", express=True).deadline_at
    sql = policy.plan(ASSIGNED, "sql", express=False).deadline_at
    mql = policy.plan(ASSIGNED, "mql", express=False).deadline_at
    assert ASSIGNED + timedelta(minutes=5) == express < sql < mql
    assert mql == ASSIGNED + timedelta(hours=24)


def test_warnings_fire_at_fractions_of_the_window_in_order() -> None:
    plan = load_policy().plan(ASSIGNED, "sql", express=False)
    assert [(w.fraction, w.at) for w in plan.warnings] == [
        (0.5, ASSIGNED + timedelta(minutes=30)),
        (0.8, ASSIGNED + timedelta(minutes=48)),
    ]


def test_team_overrides_its_window_and_assign_target_others_keep_defaults() -> None:
    policy = parse_policy(OFFICE_POLICY)
    monday_10am = ny(2025, 5, 5, 10, 0)
    assert policy.plan(monday_10am, "sql", False, team="east").window_seconds == 7200
    assert policy.plan(monday_10am, "sql", False, team="west").window_seconds == 3600
    assert policy.plan(monday_10am, "sql", True, team="east").window_seconds == 300
    assert policy.assign_target_seconds("east") == 30
    assert policy.assign_target_seconds(None) == 60


def test_env_overrides_change_the_default_windows_and_the_version() -> None:
    base = load_policy()
    fast = base.with_default_windows(express_sql=3, sql=120)
    assert fast.plan(ASSIGNED, "sql", True).deadline_at == ASSIGNED + timedelta(seconds=3)
    assert fast.plan(ASSIGNED, "sql", False).deadline_at == ASSIGNED + timedelta(seconds=120)
    assert fast.version != base.version and fast.name == base.name
    assert base.with_default_windows() is base


def test_service_applies_the_window_variables_to_the_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(OFFICE_POLICY)
    settings = SlaSettings(  # type: ignore[call-arg]
        BATON_SLA_POLICY_FILE=str(path),
        BATON_SLA_EXPRESS_SQL_SECONDS="3",
        BATON_SLA_MQL_SECONDS="600",
    )
    policy = settings.sla_policy()
    assert policy.name == "office-hours"
    assert policy.first_touch_seconds.express_sql == 3
    assert policy.first_touch_seconds.mql == 600
    assert policy.first_touch_seconds.sql == 3600


@settings(max_examples=40, deadline=None, database=None)
@given(
    express_s=st.integers(min_value=1, max_value=86_400),
    sql_s=st.integers(min_value=1, max_value=7 * 86_400),
    offset_h=st.integers(min_value=-12, max_value=14),
    assigned=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
)
def test_round_the_clock_windows_are_exact_in_any_timezone(
    express_s: int, sql_s: int, offset_h: int, assigned: datetime
) -> None:
    policy = load_policy().with_default_windows(express_sql=express_s, sql=sql_s)
    at = assigned.replace(tzinfo=timezone(timedelta(hours=offset_h)))
    assert (policy.plan(at, "sql", True).deadline_at - at).total_seconds() == express_s
    assert (policy.plan(at, "sql", False).deadline_at - at).total_seconds() == sql_s


def test_priority_comes_from_stage_and_express() -> None:
    assert Priority.of("sql", True) == Priority.EXPRESS_SQL
    assert Priority.of("sql", False) == Priority.SQL
    assert Priority.of("mql", False) == Priority.MQL


# --- business hours --------------------------------------------------------------------


def test_friday_afternoon_clock_pauses_over_the_weekend() -> None:
    friday_4pm = ny(2025, 5, 2, 16, 0)
    deadline = WEEKDAYS_9_TO_5.add(friday_4pm, 2 * 3600)
    assert deadline == ny(2025, 5, 5, 10, 0).astimezone(UTC)  # Monday 10:00
    assert WEEKDAYS_9_TO_5.elapsed(friday_4pm, deadline) == 2 * 3600


def test_assignment_at_night_starts_counting_at_opening_time() -> None:
    tuesday_3am = ny(2025, 5, 6, 3, 0)
    assert WEEKDAYS_9_TO_5.add(tuesday_3am, 300) == ny(2025, 5, 6, 9, 5).astimezone(UTC)


def test_saturday_assignment_waits_for_monday() -> None:
    saturday_noon = ny(2025, 5, 3, 12, 0)
    assert WEEKDAYS_9_TO_5.add(saturday_noon, 60) == ny(2025, 5, 5, 9, 1).astimezone(UTC)
    assert WEEKDAYS_9_TO_5.elapsed(saturday_noon, ny(2025, 5, 5, 9, 0)) == 0


def test_holiday_is_skipped() -> None:
    calendar = BusinessCalendar(
        NEW_YORK, frozenset(range(5)), ((9 * 60, 17 * 60),), frozenset({date(2025, 12, 25)})
    )
    christmas_eve_4pm = ny(2025, 12, 24, 16, 0)
    assert calendar.add(christmas_eve_4pm, 2 * 3600) == ny(2025, 12, 26, 10, 0).astimezone(UTC)


def test_working_day_across_spring_forward_is_counted_in_real_seconds() -> None:
    # 9 March 2025: clocks jump 02:00 -> 03:00 in New York. A 24/7 calendar in local
    # time: Saturday 12:00 to Sunday 12:00 is 23 real hours.
    all_week = BusinessCalendar(NEW_YORK, frozenset(range(7)), ((0, 24 * 60),))
    saturday_noon, sunday_noon = ny(2025, 3, 8, 12, 0), ny(2025, 3, 9, 12, 0)
    assert all_week.elapsed(saturday_noon, sunday_noon) == 23 * 3600
    assert all_week.add(saturday_noon, 23 * 3600) == sunday_noon.astimezone(UTC)


def test_office_hours_keep_local_time_across_fall_back() -> None:
    # 2 November 2025: New York falls back; 09:00 local is 14:00 UTC before, 14:00 after.
    friday_4pm = ny(2025, 10, 31, 16, 0)
    deadline = WEEKDAYS_9_TO_5.add(friday_4pm, 2 * 3600)
    assert deadline == datetime(2025, 11, 3, 15, 0, tzinfo=UTC)  # Monday 10:00 EST
    assert friday_4pm.astimezone(UTC).hour == 20  # it was EDT on the Friday


def test_split_shift_skips_the_lunch_break() -> None:
    calendar = BusinessCalendar(
        NEW_YORK, frozenset(range(5)), ((9 * 60, 12 * 60), (13 * 60, 17 * 60))
    )
    assert calendar.add(ny(2025, 5, 5, 11, 30), 3600) == ny(2025, 5, 5, 13, 30).astimezone(UTC)


def test_policy_calendar_sets_deadlines_and_warnings_in_business_time() -> None:
    policy = parse_policy(OFFICE_POLICY)
    friday_4pm = ny(2025, 5, 2, 16, 0)
    plan = policy.plan(friday_4pm, "sql", False, team="east")  # 2 h in NY office hours
    assert plan.calendar == "ny"
    assert plan.deadline_at == ny(2025, 5, 5, 10, 0).astimezone(UTC)
    assert [w.at for w in plan.warnings] == [
        ny(2025, 5, 2, 17, 0).astimezone(UTC),  # 50%: the last hour of Friday
        ny(2025, 5, 5, 9, 36).astimezone(UTC),  # 80%: 96 min
    ]
    assert policy.counted_seconds("ny", friday_4pm, plan.deadline_at) == 7200


@settings(max_examples=60, deadline=None, database=None)
@given(
    start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 1, 1)),
    seconds=st.integers(min_value=1, max_value=10 * 8 * 3600),
)
def test_elapsed_working_time_to_the_deadline_is_the_window(start: datetime, seconds: int) -> None:
    at = start.replace(tzinfo=UTC)
    deadline = WEEKDAYS_9_TO_5.add(at, seconds)
    assert deadline > at
    assert WEEKDAYS_9_TO_5.elapsed(at, deadline) == pytest.approx(seconds, abs=1e-6)
    assert deadline.astimezone(NEW_YORK).weekday() < 5


def test_calendar_without_any_working_time_is_refused() -> None:
    with pytest.raises(CalendarError):
        BusinessCalendar(NEW_YORK, frozenset(), ((9 * 60, 17 * 60),))
    with pytest.raises(CalendarError, match="overlap"):
        BusinessCalendar(NEW_YORK, frozenset({0}), ((9 * 60, 12 * 60), (11 * 60, 13 * 60)))


# --- the policy file -------------------------------------------------------------------


def test_version_is_name_and_content_hash() -> None:
    first = parse_policy(OFFICE_POLICY)
    same = parse_policy(OFFICE_POLICY)
    changed = parse_policy(OFFICE_POLICY.replace("7200", "5400"))
    assert first.version == same.version
    assert first.version.startswith("office-hours@")
    assert changed.version != first.version


def test_warning_fractions_are_sorted() -> None:
    assert parse_policy(OFFICE_POLICY).warn_at_fractions == [0.5, 0.8]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("name: x\nwarn_at_fractions: [1.5]", "between 0 and 1"),
        ("name: x\nteams: {a: {calendar: nowhere}}", "nowhere"),
        ("name: x\ncalendars: {c: {timezone: Mars/Olympus}}", "Mars/Olympus"),
        ("name: x\ncalendars: {c: {timezone: UTC, hours: ['17:00-09:00']}}", "17:00-09:00"),
        ("name: x\ncalendars: {c: {timezone: UTC, working_days: [funday]}}", "funday"),
        ("name: x\nfirst_touch_seconds: {sql: -5}", "first_touch_seconds"),
        ("name: x\nfirst_touch_seconds: {sql: 60}", "express_sql"),
        ("name: x\nsurprise: 1", "surprise"),
        ("- a list", "mapping"),
        ("name: [unclosed", "YAML"),
    ],
)
def test_invalid_policy_names_the_file_and_the_problem(text: str, names: str) -> None:
    with pytest.raises(PolicyError) as error:
        parse_policy(text, "team-policy.yaml")
    assert "team-policy.yaml" in str(error.value)
    assert names in str(error.value)


def test_missing_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.yaml")
