"""What part of a topic to read: a time range or an offset range. Pure parsing.

Times are ISO 8601 (``2026-11-02``, ``2026-11-02T09:30:00+01:00``; a value without a
time zone is UTC) or relative to ``now`` (``90m``, ``36h``, ``7d``, ``2w`` ago).
Offsets are per partition: ``--from-offset 1000`` starts every partition at 1000.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class RangeError(ValueError):
    """A range option the user gave is not understood; the message says how to write it."""


def parse_time(text: str, now: datetime, option: str) -> datetime:
    """An absolute or relative (``7d`` = seven days before ``now``) point in time, aware."""
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = relative.groups()
        return (now - timedelta(**{_UNITS[unit]: float(amount)})).replace(microsecond=0)
    if value == "now":
        return now.replace(microsecond=0)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RangeError(
            f"{option} {text!r}: not a time; use ISO 8601 (2026-11-02 or "
            "2026-11-02T09:30:00+00:00) or a span before now (90m, 36h, 7d, 2w)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ReadRange:
    """Where reading starts and stops, per partition. ``None`` bounds mean the log's ends.

    ``until``/``to_offset`` are exclusive. The end is fixed when reading starts, so a
    read over a live topic terminates (records produced later are not included).
    """

    since: datetime | None = None
    until: datetime | None = None
    from_offset: int | None = None
    to_offset: int | None = None

    def __post_init__(self) -> None:
        by_offset = self.from_offset is not None or self.to_offset is not None
        if (self.since or self.until) and by_offset:
            raise RangeError("give a time range (--since/--until) or an offset range, not both")
        if self.since and self.until and self.until <= self.since:
            raise RangeError(f"--until ({self.until}) must be after --since ({self.since})")
        if self.from_offset is not None and self.from_offset < 0:
            raise RangeError("--from-offset must be 0 or more")
        if (
            self.from_offset is not None
            and self.to_offset is not None
            and self.to_offset <= self.from_offset
        ):
            raise RangeError("--to-offset must be above --from-offset")

    def describe(self) -> str:
        if self.from_offset is not None or self.to_offset is not None:
            return f"offsets [{self.from_offset or 0}, {self.to_offset or 'end'})"
        start = self.since.isoformat() if self.since else "the beginning"
        end = self.until.isoformat() if self.until else "now"
        return f"{start} to {end}"


def build_range(
    since: str | None,
    until: str | None,
    from_offset: int | None,
    to_offset: int | None,
    now: datetime,
) -> ReadRange:
    return ReadRange(
        since=parse_time(since, now, "--since") if since else None,
        until=parse_time(until, now, "--until") if until else None,
        from_offset=from_offset,
        to_offset=to_offset,
    )
