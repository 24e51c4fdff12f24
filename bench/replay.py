"""Replay throughput: ``baton replay``'s path from the real broker, and the pure core alone.

    uv run python bench/replay.py [--events 300000] [--leads 20000] [--core-events 300000]
                                  [--partitions 3] [--default-gc]

1. **core**: :class:`baton_analytics.replay.Replay` (the scorer's pure core plus the
   replay's identity stitching) over an in-memory list, two ways: the encoded events
   (the values ``baton replay`` reads off ``leads.events`` and gives the core, which
   reads them itself when compiled: ``Replay.score_records``), and pre-built LeadEvent
   objects (``Replay.score_events``). events/s, and per CPU second of the process (on
   more than one core the compiled core reads encoded events on a second thread while
   it scores, so that figure is below the wall-clock one). Floor: 300,000 events/s.
2. **broker**: produces ``--events`` encoded LeadEvents to a fresh topic prefix, then
   runs what ``baton replay`` runs — a group-less read of the range, the merge into
   arrival order, decoding, and the core — and reports events/s, with the read alone
   and read + decode alongside so the cost of each step is visible.
   Floor: 100,000 events/s.

Everything runs with the garbage-collector tuning ``baton`` runs with
(:func:`baton_shared.gc_tuning.batch_gc`; ``--default-gc``: Python's defaults).
Each broker figure is given in wall-clock events/s and, in brackets, per CPU second
of this process: on a shared machine the second moves much less with the neighbours.

Kafka from ``KAFKA_BOOTSTRAP_SERVERS`` when set, else a local broker for this run.
127.0.0.1 only; every loop is bounded. The last line is the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import kafka_broker, make_events, print_figures

from baton_analytics.commands import Target, _feed
from baton_analytics.ranges import ReadRange
from baton_analytics.replay import Replay
from baton_analytics.source import TopicReader, in_time_order
from baton_scorer import core
from baton_scorer.rules import load_rules
from baton_shared.gc_tuning import batch_gc
from baton_shared.kafka import durable_producer, ensure_topics
from baton_shared.schemas import LeadEvent
from baton_shared.topics import Topics

CORE_FLOOR = 300_000
BROKER_FLOOR = 100_000


class Timer:
    """Wall-clock and CPU seconds of a step."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def bench_core(events: list[LeadEvent] | list[bytes]) -> tuple[float, float, int]:
    """events/s wall-clock and per CPU second of this process, and the transitions."""
    replay = Replay(load_rules())
    score = replay.score_records if isinstance(events[0], bytes) else replay.score_events
    with Timer() as timer:
        for i in range(0, len(events), 2000):  # in batches, as baton replay reads them
            score(events[i : i + 2000])  # type: ignore[arg-type]
    assert replay.events == len(events)
    per_cpu = len(events) / timer.cpu if timer.cpu else float("inf")
    return len(events) / timer.wall, per_cpu, len(replay.transitions)


async def produce_all(
    bootstrap: str, topic: str, events: list[LeadEvent], partitions: int = 3
) -> None:
    await ensure_topics(bootstrap, [topic], partitions=partitions)
    producer = durable_producer(bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        pending = []
        for e in events:
            pending.append(await producer.send(topic, e.to_bytes(), key=e.lead_id.encode()))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def bench_read(bootstrap: str, topic: str, decode_too: bool) -> tuple[Timer, int]:
    """What ``baton replay`` reads, in time order, optionally validated as it validates."""
    n = 0
    with Timer() as timer:
        async with TopicReader(bootstrap, [topic], ReadRange()) as reader:
            async for batch in in_time_order(reader):
                if decode_too:
                    for r in batch:
                        LeadEvent.model_validate_json(r.value or b"")
                n += len(batch)
    return timer, n


async def bench_replay(bootstrap: str, prefix: str) -> tuple[Timer, int]:
    replay = Replay(load_rules())
    with Timer() as timer:
        await _feed(Target(bootstrap, prefix), ReadRange(), [replay], None)
    return timer, replay.events


def report(label: str, timer: Timer, n: int) -> tuple[float, float]:
    wall, cpu = n / timer.wall, n / timer.cpu if timer.cpu else float("inf")
    print(f"{label:<26} {wall:>12,.0f} events/s  ({cpu:,.0f} per CPU second; {n:,})")
    return wall, cpu


async def bench_broker(
    bootstrap: str, events: list[LeadEvent], partitions: int
) -> dict[str, float]:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    topic = Topics(prefix).events
    started = time.perf_counter()
    await produce_all(bootstrap, topic, events, partitions)
    print(
        f"produced {len(events):,} events to {partitions} partitions "
        f"in {time.perf_counter() - started:.1f} s"
    )
    # The bench's own input list is not part of a replay (baton replay holds no such
    # list): out of the collector's scans, as the core figure's input is.
    gc.freeze()
    read, read_cpu = report("broker read only", *await bench_read(bootstrap, topic, False))
    decode_, decode_cpu = report("broker read + decode", *await bench_read(bootstrap, topic, True))
    replay, replay_cpu = report("broker replay (full path)", *await bench_replay(bootstrap, prefix))
    return {
        "broker_read_events_per_s": round(read),
        "broker_decode_events_per_s": round(decode_),
        "broker_replay_events_per_s": round(replay),
        "broker_read_events_per_cpu_s": round(read_cpu),
        "broker_decode_events_per_cpu_s": round(decode_cpu),
        "broker_replay_events_per_cpu_s": round(replay_cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--core-events", type=int, default=300_000)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=3, help="of the bench's topic")
    parser.add_argument(
        "--default-gc", action="store_true", help="Python's GC thresholds, not baton's"
    )
    args = parser.parse_args()

    gc_tuning = contextlib.nullcontext() if args.default_gc else batch_gc()
    with gc_tuning:
        figures = run(args)
    print_figures(
        {
            **figures,
            "core_floor": CORE_FLOOR,
            "broker_floor": BROKER_FLOOR,
            "events": args.events,
            "leads": args.leads,
            "partitions": args.partitions,
            "gc": "default" if args.default_gc else "baton",
        }
    )


def run(args: argparse.Namespace) -> dict[str, float | str]:
    core_events = make_events(args.core_events, args.leads, seed=11, id_prefix="r")
    encoded = [e.to_bytes() for e in core_events]
    if not args.default_gc:
        gc.freeze()  # the prebuilt input is data, not work: out of the collector's scans
    core_rate, core_cpu, transitions = bench_core(encoded)
    verdict = "ok" if core_rate >= CORE_FLOOR else f"BELOW the {CORE_FLOOR:,} floor"
    print(
        f"core replay, encoded events ({core.KIND} core) {core_rate:>10,.0f} events/s "
        f"({core_cpu:,.0f} per CPU second; {transitions:,} transitions) {verdict}"
    )
    objects_rate, objects_cpu, _ = bench_core(core_events)
    print(
        f"core replay, LeadEvent objects ({core.KIND} core) {objects_rate:>8,.0f} events/s "
        f"({objects_cpu:,.0f} per CPU second)"
    )
    del core_events, encoded
    events = make_events(args.events, args.leads, seed=11, id_prefix="r")
    with kafka_broker() as bootstrap:
        figures = asyncio.run(bench_broker(bootstrap, events, args.partitions))
    rate = figures["broker_replay_events_per_s"]
    verdict = "ok" if rate >= BROKER_FLOOR else f"BELOW the {BROKER_FLOOR:,} floor"
    print(f"broker replay floor {BROKER_FLOOR:,}: {verdict}")
    return {
        "core_events_per_s": round(core_rate),
        "core_objects_events_per_s": round(objects_rate),
        "core_events_per_cpu_s": round(core_cpu),
        "core_objects_events_per_cpu_s": round(objects_cpu),
        "core": core.KIND,
        **figures,
    }


if __name__ == "__main__":
    main()
