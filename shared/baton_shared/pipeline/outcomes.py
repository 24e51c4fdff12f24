"""What became of each consumed record, counted: ``processed`` or ``dead_letter``
(parked on ``<topic>.dlq`` with the error), and every failed handler attempt."""

from __future__ import annotations

from prometheus_client import Counter

CONSUMED = Counter("baton_consumer_records_total", "Records consumed", ["consumer", "outcome"])
HANDLER_FAILURES = Counter(
    "baton_consumer_handler_failures_total",
    "Failed handler attempts; transient=true: a dependency was unavailable (retried until "
    "it is back), false: counted toward the bounded attempts before the DLQ",
    ["consumer", "transient"],
)


def processed(consumer: str, records: int) -> None:
    CONSUMED.labels(consumer=consumer, outcome="processed").inc(records)


def dead_lettered(consumer: str) -> None:
    CONSUMED.labels(consumer=consumer, outcome="dead_letter").inc()


def failed_attempt(consumer: str, transient: bool) -> None:
    HANDLER_FAILURES.labels(consumer=consumer, transient=str(transient).lower()).inc()
