"""When a failed handler is tried again, and for how long.

An error from a dependency that is down (database, broker, network) is transient: the
work is retried with backoff for as long as it takes, because skipping the record would
lose it. Any other error counts toward a bounded number of attempts, after which
:class:`GaveUp` is raised and the caller decides what to drop (see ``handle.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from aiokafka import errors as kafka_errors

from baton_shared.logs import get_logger
from baton_shared.pipeline.outcomes import failed_attempt

log = get_logger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` tries for errors that are not transient; backoff between every
    try starts at ``backoff_seconds`` and doubles up to ``max_backoff_seconds``."""

    max_attempts: int = 5
    backoff_seconds: float = 0.2
    max_backoff_seconds: float = 10.0

    def delays(self) -> Iterator[float]:
        delay = self.backoff_seconds
        while True:
            yield delay
            delay = min(delay * 2, self.max_backoff_seconds)


class GaveUp(Exception):
    """The work failed ``max_attempts`` times with errors that are not transient; the
    last error is ``__cause__``."""


def _database_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(transient, excluded) database error types; none without the ``db`` extra."""
    try:
        import asyncpg
        from asyncpg.exceptions import _base as asyncpg_base
        from sqlalchemy import exc as sql
    except ImportError:  # pragma: no cover - a service without a database
        return (), ()
    transient = (
        asyncpg.PostgresConnectionError,  # class 08, ConnectionDoesNotExistError
        asyncpg.InterfaceError,  # "connection is closed", minus the bad-input ones below
        asyncpg.exceptions.OperatorInterventionError,  # 57: shutdown, cannot connect now
        asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
        asyncpg.exceptions.TransactionRollbackError,  # 40: serialization failure, deadlock
        sql.OperationalError,
        sql.DisconnectionError,
        sql.TimeoutError,  # no pooled connection came free in time
    )
    # InterfaceErrors about the input, not the connection (a value PostgreSQL refuses).
    excluded = (
        asyncpg_base.DataError,
        asyncpg_base.ClientConfigurationError,
        asyncpg_base.UnsupportedClientFeatureError,
        asyncpg_base.UnsupportedServerFeatureError,
    )
    return transient, excluded


_DATABASE_TRANSIENT, _DATABASE_EXCLUDED = _database_errors()
_KAFKA_TRANSIENT = (kafka_errors.KafkaConnectionError, kafka_errors.KafkaTimeoutError)


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` says a dependency is unavailable rather than that the work is
    wrong: network and OS errors and timeouts (``OSError``, ``ConnectionError``,
    ``TimeoutError``), PostgreSQL connection, shutdown, resource and serialization
    errors (asyncpg, or SQLAlchemy's ``OperationalError`` and invalidated connections),
    and Kafka errors aiokafka calls retriable plus connection and timeout errors.

    The chain of causes (``__cause__``, SQLAlchemy's ``orig``) is searched, so a driver
    error wrapped by SQLAlchemy is judged by what the driver said."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if _transient_by_type(error):
            return True
        pending += [error.__cause__, getattr(error, "orig", None)]
    return False


def _transient_by_type(error: BaseException) -> bool:
    if isinstance(error, _DATABASE_EXCLUDED):
        return False
    if isinstance(error, (OSError, *_KAFKA_TRANSIENT, *_DATABASE_TRANSIENT)):
        return True
    if isinstance(error, kafka_errors.KafkaError):
        return bool(error.retriable)
    return bool(getattr(error, "connection_invalidated", False))


async def retry(
    work: Callable[[], Awaitable[object]], policy: RetryPolicy, consumer: str, **where: object
) -> None:
    """Run ``work`` until it succeeds: forever while it fails with transient errors,
    and at most ``policy.max_attempts`` times counting the others (then
    :class:`GaveUp`). ``where`` goes into the log lines."""
    failures = 0
    for delay in policy.delays():
        try:
            await work()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            transient = is_transient(exc)
            failed_attempt(consumer, transient)
            failures += 0 if transient else 1
            if failures >= policy.max_attempts:
                raise GaveUp(f"failed {failures} times") from exc
            log.error(
                "handler_failed_retrying",
                consumer=consumer,
                transient=transient,
                attempt=failures,
                error=_types(exc),
                retry_in_s=delay,
                **where,
            )
            await asyncio.sleep(delay)


def _types(exc: BaseException) -> str:
    """The error's type and its causes' (``DBAPIError<-DataError``): what a log line may
    say. Messages can quote the record (SQL parameters), so they go only to the DLQ."""
    names = [type(exc).__name__]
    while (exc := exc.__cause__ or getattr(exc, "orig", None)) is not None and len(names) < 4:
        names.append(type(exc).__name__)
    return "<-".join(names)
