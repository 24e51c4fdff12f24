"""Business-hours calendars: the SLA clock runs only inside working hours. Pure.

A calendar is a time zone, the working days of the week, one or more working
intervals per day in local wall-clock time, and holidays. Working intervals are
turned into UTC instants day by day through ``zoneinfo``, so a day on which
daylight saving time changes is as long as it really is, and arithmetic is done
in UTC only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

#: How far ahead a deadline may be searched before the calendar is declared unusable
#: (a calendar whose every day is a holiday for ten years has no deadlines).
MAX_SEARCH_DAYS = 3660

MINUTES_PER_DAY = 24 * 60


class CalendarError(ValueError):
    """A calendar has no working time where some is needed."""


@dataclass(frozen=True)
class BusinessCalendar:
    """Working time in one time zone.

    ``hours`` are ``(start_minute, end_minute)`` pairs of local wall-clock time,
    ``0 <= start < end <= 1440`` (``1440`` is midnight at the end of the day),
    sorted and not overlapping. ``working_days`` uses ``date.weekday()`` numbers
    (Monday is 0).
    """

    zone: ZoneInfo
    working_days: frozenset[int]
    hours: tuple[tuple[int, int], ...]
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not self.working_days or not self.hours:
            raise CalendarError("a business calendar needs working days and working hours")
        previous_end = -1
        for start, end in self.hours:
            if not 0 <= start < end <= MINUTES_PER_DAY or start < previous_end:
                raise CalendarError(f"working hours {self.hours} overlap or are out of order")
            previous_end = end

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.working_days and day not in self.holidays

    def intervals_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of local ``day``, as UTC instants."""
        if not self.is_working_day(day):
            return []
        return [(self._instant(day, start), self._instant(day, end)) for start, end in self.hours]

    def _instant(self, day: date, minute: int) -> datetime:
        local = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
        return local.replace(tzinfo=self.zone).astimezone(UTC)

    def _intervals_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        day = at.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(MAX_SEARCH_DAYS):
            for start, end in self.intervals_on(day):
                if end > at:
                    yield max(start, at), end
            day += timedelta(days=1)
        raise CalendarError(f"no working time within {MAX_SEARCH_DAYS} days of {at.isoformat()}")

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant at which ``seconds`` of working time have passed since ``start``."""
        start = start.astimezone(UTC)
        if seconds <= 0:
            return start
        remaining = timedelta(seconds=seconds)
        for begin, end in self._intervals_from(start):
            if remaining <= end - begin:
                return begin + remaining
            remaining -= end - begin
        raise AssertionError("unreachable: _intervals_from raises when it runs out")

    def elapsed(self, start: datetime, end: datetime) -> float:
        """Seconds of working time between ``start`` and ``end`` (0 when end <= start)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        total = 0.0
        if end <= start:
            return total
        for begin, finish in self._intervals_from(start):
            if begin >= end:
                break
            total += (min(finish, end) - begin).total_seconds()
        return total


def wall_clock_add(start: datetime, seconds: float) -> datetime:
    """Round-the-clock counting: the deadline is simply ``seconds`` later."""
    return start.astimezone(UTC) + timedelta(seconds=seconds)
