"""What every bench script needs: a real Kafka broker and figures printed the same way."""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from baton_devstack.kafka import LocalKafka
from baton_shared.schemas import EventType, LeadEvent

# A mix of awareness, consideration and email signals (and a zero-point heartbeat).
KINDS = [
    (EventType.PAGE, None, "blog"),
    (EventType.PAGE, None, "docs"),
    (EventType.PAGE, None, "product"),
    (EventType.PAGE, None, "pricing"),
    (EventType.TRACK, "Email Opened", None),
    (EventType.TRACK, "Email Clicked", None),
    (EventType.TRACK, "Webinar Attended", None),
    (EventType.TRACK, "Newsletter Subscribed", None),
    (EventType.TRACK, "Heartbeat", None),
]


def make_events(
    n: int, leads: int, seed: int, spacing_s: float = 5, id_prefix: str = "e"
) -> list[LeadEvent]:
    """``n`` canonical events over ``leads`` leads, ``spacing_s`` apart in event time."""
    rnd = random.Random(seed)
    t0 = datetime.now(UTC) - timedelta(days=30)
    out = []
    for i in range(n):
        kind, name, category = rnd.choice(KINDS)
        at = t0 + timedelta(seconds=i * spacing_s)
        out.append(
            LeadEvent(
                event_id=f"{id_prefix}{i}",
                lead_id=f"lead-{rnd.randrange(leads)}",
                type=kind,
                name=name,
                page_category=category,
                occurred_at=at,
                received_at=at,
                source="bench",
            )
        )
    return out


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


def infra_env() -> dict[str, str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` and ``DATABASE_URL`` from the environment when both are
    set, else those of the local dev stack (``.devstack``, started if it is not running)."""
    names = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    if all(os.environ.get(name) for name in names):
        return {name: os.environ[name] for name in names}
    from baton_devstack.infra import default_state_dir, start_infra

    print("starting the local Kafka and PostgreSQL (.devstack) ...", flush=True)
    return start_infra(default_state_dir())


class QuietServer(ThreadingHTTPServer):
    """A local receiver for the services' webhooks. The default listen backlog (5) drops
    SYNs when a router opens its connections at once; a dropped SYN is retried after 1 s
    and shows as a 1 s outlier that is the receiver's, not the router's."""

    request_queue_size = 256
    daemon_threads = True


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=1000, method="inclusive")[int(q * 1000) - 1]


def host_speed() -> float:
    """Million iterations per second of a fixed pure-Python loop (best of three): how fast
    this host runs Python today, so figures from different days and hosts compare."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(2.0 / best, 2)


def stage_breakdown(
    before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]
) -> dict[str, dict[str, float | None]]:
    """Per stage (cumulative histogram buckets by upper bound, scraped twice), the bucket
    bounds (ms) that hold the p50 and p99 of the observations made between the scrapes:
    "p99 ≤ 20 ms" means the 99th percentile fell in a bucket ending at 20 ms."""
    figures: dict[str, dict[str, float | None]] = {}
    for stage, buckets in after.items():
        delta = sorted((le, n - before.get(stage, {}).get(le, 0)) for le, n in buckets.items())
        total = delta[-1][1] if delta else 0
        row: dict[str, float | None] = {"count": total}
        for label, q in (("p50_le_ms", 0.5), ("p99_le_ms", 0.99)):
            bound = next((le for le, n in delta if total and n >= q * total), None)
            row[label] = None if bound is None else round(bound * 1000, 1)
        figures[stage] = row
    return figures


def print_figures(figures: dict[str, Any]) -> None:
    """The last line a bench prints: its figures as one JSON object (with ``host_mips``,
    :func:`host_speed` measured now)."""
    print(json.dumps({**figures, "host_mips": host_speed()}), flush=True)
