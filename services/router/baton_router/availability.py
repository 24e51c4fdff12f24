"""Is a rep working right now? Status, working hours in the rep's own time zone, and
out-of-office ranges. Pure: the rep's calendar and an explicit ``now`` in, a yes/no out.

Working hours are a weekly template, ``{"mon": ["09:00-12:00", "13:00-17:30"], ...}``
read as wall-clock times in the rep's IANA time zone (so a rep in Berlin working 9-17
is available 08:00-16:00 UTC in winter and 07:00-15:00 UTC in summer). A day missing
from the template is a day off; no template at all means always on. A range may end
at ``24:00``; ``22:00-02:00`` crosses midnight into the next day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class InvalidCalendar(ValueError):
    """A time zone, working-hours template or out-of-office range that makes no sense.
    ``field`` names the part of the input that is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class Calendar:
    """When a rep works. ``hours`` maps weekday → list of (start, end) minutes of the day."""

    timezone: str = "UTC"
    hours: dict[str, tuple[tuple[int, int], ...]] | None = None
    out_of_office: tuple[tuple[datetime, datetime], ...] = ()


def parse_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidCalendar(
            "timezone", f"unknown IANA time zone {name!r} (e.g. 'Europe/Berlin')"
        ) from None


def parse_working_hours(
    raw: dict[str, list[str]] | None,
) -> dict[str, tuple[tuple[int, int], ...]] | None:
    """Validate the weekly template; ranges become (start_minute, end_minute)."""
    if raw is None:
        return None
    out: dict[str, tuple[tuple[int, int], ...]] = {}
    for day, ranges in raw.items():
        if day not in WEEKDAYS:
            raise InvalidCalendar(
                f"working_hours.{day}", f"unknown weekday; use one of {', '.join(WEEKDAYS)}"
            )
        parsed = []
        for i, text in enumerate(ranges):
            match = _RANGE.match(text)
            if match is None:
                raise InvalidCalendar(
                    f"working_hours.{day}[{i}]", f"{text!r} is not 'HH:MM-HH:MM' (24-hour clock)"
                )
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if end > 24 * 60 or start == end:
                raise InvalidCalendar(f"working_hours.{day}[{i}]", f"{text!r} is an empty range")
            parsed.append((start, end))
        out[day] = tuple(parsed)
    return out


def in_working_hours(calendar: Calendar, now: datetime) -> bool:
    if calendar.hours is None:
        return True
    local = now.astimezone(parse_timezone(calendar.timezone))
    minute = local.hour * 60 + local.minute
    today = WEEKDAYS[local.weekday()]
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    for start, end in calendar.hours.get(today, ()):
        if start < end and start <= minute < end:
            return True
        if start > end and minute >= start:  # crosses midnight: the evening part
            return True
    # The morning part of yesterday's range that crosses midnight.
    return any(start > end and minute < end for start, end in calendar.hours.get(yesterday, ()))


def out_of_office(calendar: Calendar, now: datetime) -> bool:
    return any(start <= now < end for start, end in calendar.out_of_office)


def is_available(status: str, calendar: Calendar, now: datetime) -> bool:
    """Online, inside working hours (rep's time zone), and not out of office."""
    return (
        status == "online" and in_working_hours(calendar, now) and not out_of_office(calendar, now)
    )
