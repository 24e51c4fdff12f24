"""Which handler errors are a dependency outage (retried until it ends) and which count
toward the bounded attempts before the DLQ; and the retry loop that applies it."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka import errors as kafka
from asyncpg.exceptions import _base as asyncpg_base
from sqlalchemy import exc as sql

from baton_shared.pipeline import RetryPolicy, is_transient
from baton_shared.pipeline.retry import GaveUp, retry

FAST = RetryPolicy(max_attempts=3, backoff_seconds=0.001, max_backoff_seconds=0.002)


def caused_by(cause: BaseException, error: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


def wrapped_by_sqlalchemy(driver_error: BaseException) -> BaseException:
    """As SQLAlchemy's asyncpg dialect raises a driver error: the DBAPI adapter's error
    (``orig``), caused by asyncpg's."""
    adapted = caused_by(driver_error, Exception(str(driver_error)))
    return sql.DBAPIError("SELECT 1", {}, adapted)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        OSError("network is unreachable"),
        ConnectionRefusedError(111, "connection refused"),
        ConnectionResetError(),
        TimeoutError(),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.InterfaceError("connection is closed"),
        sql.OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        sql.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
        sql.TimeoutError("QueuePool limit reached"),
        wrapped_by_sqlalchemy(asyncpg.ConnectionDoesNotExistError("closed")),
        kafka.KafkaConnectionError("no broker"),
        kafka.KafkaTimeoutError(),
        kafka.NotLeaderForPartitionError(),
        kafka.RequestTimedOutError(),
        caused_by(ConnectionRefusedError(), RuntimeError("publish failed")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_dependency_that_is_down_is_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad value"),
        OverflowError("date value out of range"),
        KeyError("missing"),
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg_base.DataError("invalid input for query argument $1"),
        sql.IntegrityError("INSERT", {}, Exception("duplicate key")),
        sql.DBAPIError("SELECT 1", {}, Exception("bad input")),
        wrapped_by_sqlalchemy(asyncpg_base.DataError("invalid input for query argument $5")),
        kafka.MessageSizeTooLargeError(),
        caused_by(ValueError("bad"), RuntimeError("handler failed")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_error_of_the_work_itself_is_not_transient(error: BaseException) -> None:
    assert not is_transient(error)


def test_backoff_doubles_up_to_its_cap() -> None:
    delays = RetryPolicy(backoff_seconds=0.2, max_backoff_seconds=1.0).delays()
    assert [next(delays) for _ in range(6)] == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_defaults_are_five_attempts_from_a_fifth_of_a_second_to_ten() -> None:
    assert RetryPolicy() == RetryPolicy(
        max_attempts=5, backoff_seconds=0.2, max_backoff_seconds=10.0
    )


class Flaky:
    """Work that raises the given errors in turn, then succeeds."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)


async def test_an_outage_longer_than_the_attempts_is_waited_out() -> None:
    work = Flaky(*[ConnectionRefusedError() for _ in range(10)])

    await retry(work, FAST, "test")

    assert work.calls == 11


async def test_a_recurring_error_gives_up_after_max_attempts_with_the_last_error() -> None:
    work = Flaky(*[OverflowError(f"try {n}") for n in range(10)])

    with pytest.raises(GaveUp) as gave_up:
        await retry(work, FAST, "test")

    assert work.calls == 3
    assert str(gave_up.value.__cause__) == "try 2"


async def test_transient_failures_do_not_use_up_the_attempts() -> None:
    work = Flaky(ValueError(), TimeoutError(), ValueError(), TimeoutError(), TimeoutError())

    await retry(work, FAST, "test")

    assert work.calls == 6
