"""When to try a failed delivery again. Pure."""

from __future__ import annotations

import random
from datetime import datetime, timedelta


def next_attempt_at(
    attempts: int,
    now: datetime,
    schedule_seconds: tuple[float, ...],
    retry_after_seconds: float | None = None,
    rng: random.Random | None = None,
) -> datetime | None:
    """The time of the next try after ``attempts`` failures, or None when the schedule is
    exhausted (the message goes to the dead-letter state). ±10 % jitter spreads retries;
    a receiver's ``Retry-After`` is honoured when it asks for longer."""
    if attempts > len(schedule_seconds):
        return None
    base = schedule_seconds[attempts - 1]
    jitter = (rng or random).uniform(-0.1, 0.1) * base
    delay = max(base + jitter, retry_after_seconds or 0.0)
    return now + timedelta(seconds=delay)
