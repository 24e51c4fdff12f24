"""What every bench script needs: a real Kafka broker and figures printed the same way."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from baton_devstack.kafka import LocalKafka


@contextmanager
def kafka_broker() -> Iterator[str]:
    """``$KAFKA_BOOTSTRAP_SERVERS`` if set, else a local KRaft broker for this run."""
    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield servers
        return
    with tempfile.TemporaryDirectory(prefix="baton-bench-") as tmp:
        kafka = LocalKafka(Path(tmp) / "kafka")
        kafka.start()
        try:
            yield kafka.bootstrap_servers
        finally:
            kafka.stop()


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=1000, method="inclusive")[int(q * 1000) - 1]


def print_figures(figures: dict[str, float | int | str]) -> None:
    """The last line a bench prints: its figures as one JSON object."""
    print(json.dumps(figures), flush=True)
