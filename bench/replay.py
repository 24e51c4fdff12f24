"""Replay throughput: ``baton replay``'s path from the real broker, and the pure core alone.

    uv run python bench/replay.py [--events 300000] [--leads 20000] [--core-events 300000]

1. **core**: :class:`baton_analytics.replay.Replay` (the scorer's pure core plus the
   replay's identity stitching) over pre-built LeadEvents in memory: events/s.
   Floor: 300,000 events/s.
2. **broker**: produces ``--events`` encoded LeadEvents to a fresh topic prefix, then
   runs what ``baton replay`` runs — a group-less read of the range, the merge into
   arrival order, decoding, and the core — and reports events/s, with the read alone
   and read + decode alongside so the cost of each step is visible.
   Floor: 100,000 events/s.

Kafka from ``KAFKA_BOOTSTRAP_SERVERS`` when set, else a local broker for this run.
127.0.0.1 only; every loop is bounded. The last line is the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
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
from baton_scorer.rules import load_rules
from baton_shared.kafka import durable_producer, ensure_topics
from baton_shared.schemas import LeadEvent, decode
from baton_shared.topics import Topics

CORE_FLOOR = 300_000
BROKER_FLOOR = 100_000


def bench_core(events: list[LeadEvent]) -> tuple[float, int]:
    replay = Replay(load_rules())
    started = time.perf_counter()
    for event in events:
        replay.event(event)
    elapsed = time.perf_counter() - started
    return len(events) / elapsed, len(replay.transitions)


async def produce_all(bootstrap: str, topic: str, events: list[LeadEvent]) -> None:
    await ensure_topics(bootstrap, [topic], partitions=3)
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


async def bench_read(bootstrap: str, topic: str, decode_too: bool) -> tuple[float, int]:
    started = time.perf_counter()
    n = 0
    async with TopicReader(bootstrap, [topic], ReadRange()) as reader:
        async for batch in in_time_order(reader):
            if decode_too:
                for r in batch:
                    decode(LeadEvent, r.value)
            n += len(batch)
    return n / (time.perf_counter() - started), n


async def bench_replay(bootstrap: str, prefix: str) -> tuple[float, int]:
    replay = Replay(load_rules())
    started = time.perf_counter()
    await _feed(Target(bootstrap, prefix), ReadRange(), [replay])
    elapsed = time.perf_counter() - started
    return replay.events / elapsed, replay.events


async def bench_broker(bootstrap: str, events: list[LeadEvent]) -> dict[str, float]:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    topic = Topics(prefix).events
    started = time.perf_counter()
    await produce_all(bootstrap, topic, events)
    print(f"produced {len(events):,} events in {time.perf_counter() - started:.1f} s")
    read_rate, n = await bench_read(bootstrap, topic, decode_too=False)
    print(f"broker read only           {read_rate:>12,.0f} events/s ({n:,})")
    decode_rate, _ = await bench_read(bootstrap, topic, decode_too=True)
    print(f"broker read + decode       {decode_rate:>12,.0f} events/s")
    replay_rate, replayed = await bench_replay(bootstrap, prefix)
    print(f"broker replay (full path)  {replay_rate:>12,.0f} events/s ({replayed:,})")
    return {
        "broker_read_events_per_s": round(read_rate),
        "broker_decode_events_per_s": round(decode_rate),
        "broker_replay_events_per_s": round(replay_rate),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--core-events", type=int, default=300_000)
    parser.add_argument("--leads", type=int, default=20_000)
    args = parser.parse_args()

    core_events = make_events(args.core_events, args.leads, seed=11, id_prefix="r")
    core_rate, transitions = bench_core(core_events)
    verdict = "ok" if core_rate >= CORE_FLOOR else f"BELOW the {CORE_FLOOR:,} floor"
    print(
        f"core replay                {core_rate:>12,.0f} events/s "
        f"({transitions:,} transitions) {verdict}"
    )
    with kafka_broker() as bootstrap:
        figures = asyncio.run(
            bench_broker(bootstrap, make_events(args.events, args.leads, seed=11, id_prefix="r"))
        )
    rate = figures["broker_replay_events_per_s"]
    verdict = "ok" if rate >= BROKER_FLOOR else f"BELOW the {BROKER_FLOOR:,} floor"
    print(f"broker replay floor {BROKER_FLOOR:,}: {verdict}")
    print_figures(
        {
            "core_events_per_s": round(core_rate),
            **figures,
            "core_floor": CORE_FLOOR,
            "broker_floor": BROKER_FLOOR,
            "events": args.events,
            "leads": args.leads,
        }
    )


if __name__ == "__main__":
    main()
