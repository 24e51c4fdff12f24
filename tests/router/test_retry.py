"""Webhook retry timing: the schedule with ±10 % jitter, Retry-After, and giving up."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baton_router.config import DEFAULT_RETRY_SCHEDULE
from baton_router.retry import next_attempt_at

NOW = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)
SCHEDULE = (5.0, 300.0, 1800.0, 7200.0)


def delay(at: datetime | None) -> float:
    assert at is not None
    return (at - NOW).total_seconds()


@settings(max_examples=80, deadline=None, database=None)
@given(
    attempts=st.integers(min_value=1, max_value=len(SCHEDULE)),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_each_retry_follows_the_schedule_within_ten_percent(attempts: int, seed: int) -> None:
    base = SCHEDULE[attempts - 1]
    got = delay(next_attempt_at(attempts, NOW, SCHEDULE, rng=random.Random(seed)))
    assert base * 0.9 - 1e-6 <= got <= base * 1.1 + 1e-6


def test_default_random_source_also_stays_within_jitter() -> None:
    for attempts, base in enumerate(DEFAULT_RETRY_SCHEDULE, start=1):
        for _ in range(20):
            got = delay(next_attempt_at(attempts, NOW, DEFAULT_RETRY_SCHEDULE))
            assert base * 0.9 - 1e-6 <= got <= base * 1.1 + 1e-6


def test_jitter_actually_spreads_retries() -> None:
    rng = random.Random(7)
    delays = {delay(next_attempt_at(2, NOW, SCHEDULE, rng=rng)) for _ in range(50)}
    assert len(delays) > 10
    assert min(delays) < SCHEDULE[1] < max(delays)


def test_later_failures_wait_longer() -> None:
    rng = random.Random(1)
    delays = [delay(next_attempt_at(n, NOW, SCHEDULE, rng=rng)) for n in range(1, 5)]
    assert delays == sorted(delays)


@pytest.mark.parametrize("extra", [1, 2, 10])
def test_exhausted_schedule_gives_up(extra: int) -> None:
    assert next_attempt_at(len(SCHEDULE) + extra, NOW, SCHEDULE) is None
    assert next_attempt_at(len(SCHEDULE), NOW, SCHEDULE) is not None


def test_empty_schedule_never_retries() -> None:
    assert next_attempt_at(1, NOW, ()) is None


@settings(max_examples=60, deadline=None, database=None)
@given(
    attempts=st.integers(min_value=1, max_value=len(SCHEDULE)),
    factor=st.floats(min_value=1.11, max_value=100.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_longer_retry_after_wins(attempts: int, factor: float, seed: int) -> None:
    retry_after = SCHEDULE[attempts - 1] * factor  # beyond any jitter
    got = delay(next_attempt_at(attempts, NOW, SCHEDULE, retry_after, random.Random(seed)))
    assert got == pytest.approx(retry_after)


@settings(max_examples=60, deadline=None, database=None)
@given(
    attempts=st.integers(min_value=1, max_value=len(SCHEDULE)),
    factor=st.floats(min_value=0.0, max_value=0.89),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_shorter_retry_after_does_not_shorten_the_schedule(
    attempts: int, factor: float, seed: int
) -> None:
    base = SCHEDULE[attempts - 1]
    got = delay(next_attempt_at(attempts, NOW, SCHEDULE, base * factor, random.Random(seed)))
    assert base * 0.9 - 1e-6 <= got <= base * 1.1 + 1e-6


def test_retry_after_cannot_revive_an_exhausted_schedule() -> None:
    assert next_attempt_at(len(SCHEDULE) + 1, NOW, SCHEDULE, retry_after_seconds=60) is None


def test_next_attempt_is_relative_to_now() -> None:
    later = NOW + timedelta(hours=3)
    at = next_attempt_at(1, later, SCHEDULE, rng=random.Random(3))
    assert at is not None
    assert later < at <= later + timedelta(seconds=SCHEDULE[0] * 1.1)
