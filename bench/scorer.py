"""Scorer throughput: the pure core alone, and one worker end to end on the real broker.

    uv run python bench/scorer.py [--core-events 200000] [--events 100000] [--leads 20000]
                                  [--batch-max 2000]
                                  [--per-event] [--profile]

1. **core**: ``lifecycle.score_event`` over pre-built events (no Kafka, no decoding),
   events/s. ``--profile`` prints where the time goes (cProfile, top functions).
2. **worker**: produces ``--events`` encoded LeadEvents to a fresh topic prefix, starts
   one scorer process (``baton_scorer.main``), and measures events/s from its first
   scored event to its last (polling its ``/metrics``). ``--per-event`` also runs the
   worker with ``BATON_SCORER_BATCH_MAX=1`` (faust's one-event-at-a-time shape) to show
   what batching buys.

Kafka from ``KAFKA_BOOTSTRAP_SERVERS`` when set, else a local broker for this run.
127.0.0.1 only; every loop is bounded. The last line is the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import re
import sys
import tempfile
import time
import uuid
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import kafka_broker, make_events, print_figures

from baton_devstack.ports import free_port
from baton_devstack.services import SERVICES, ServiceProcess
from baton_scorer import core
from baton_scorer.app import internal_topics
from baton_scorer.config import ScorerSettings
from baton_scorer.lifecycle import LeadState, score_event
from baton_scorer.rules import load_rules
from baton_shared.gc_tuning import batch_gc
from baton_shared.kafka import durable_producer, ensure_topics
from baton_shared.schemas import LeadEvent


def bench_core(events: list[LeadEvent], profile: bool) -> tuple[float, int]:
    """``core.score_event`` (the core the worker runs) over prebuilt events."""
    rules = load_rules()
    states: dict[str, Any] = {}
    transitions = 0
    profiler = cProfile.Profile() if profile else None
    score, new_state = core.scorer(rules), core.new_state
    with batch_gc():  # the collector as the worker runs it; the prebuilt input frozen
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        for event in events:
            state = states.get(event.lead_id)
            if state is None:
                state = states[event.lead_id] = new_state()
            transitions += len(score(state, event))
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
    if profiler:
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(10)
        print(buf.getvalue())
    return len(events) / elapsed, transitions


def bench_reference(events: list[LeadEvent]) -> float:
    """The Python reference core (``lifecycle.score_event``) on the same events."""
    rules = load_rules()
    states: dict[str, LeadState] = {}
    with batch_gc():
        started = time.perf_counter()
        for event in events:
            state = states.get(event.lead_id)
            if state is None:
                state = states[event.lead_id] = LeadState()
            score_event(state, event, rules)
        elapsed = time.perf_counter() - started
    return len(events) / elapsed


async def produce_all(bootstrap: str, topic: str, events: list[LeadEvent]) -> None:
    producer = durable_producer(bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        batch = []
        for e in events:
            batch.append(await producer.send(topic, e.to_bytes(), key=e.lead_id.encode()))
            if len(batch) >= 5000:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


SCORED = re.compile(
    r'^baton_scorer_events_total\{outcome="(scored|duplicate)"\} ([0-9.e+]+)$', re.M
)


def scored(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return int(sum(float(v) for _, v in SCORED.findall(text)))


def bench_worker(
    bootstrap: str,
    events: list[LeadEvent],
    batch_max: int,
    timeout: float,
    rules_text: str | None = None,
) -> float:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    workdir = Path(tempfile.mkdtemp(prefix="baton-bench-scorer-"))
    env = {
        "BATON_ENV": "test",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "BATON_TOPIC_PREFIX": prefix,
        "BATON_SCORER_DATA_DIR": str(workdir / "scorer"),
        "BATON_SCORER_BATCH_MAX": str(batch_max),
        "BATON_LOG_LEVEL": "WARNING",
    }
    if rules_text is not None:
        (workdir / "rules.yaml").write_text(rules_text)
        env["BATON_SCORER_RULES_FILE"] = str(workdir / "rules.yaml")
    settings = ScorerSettings.model_validate(env)
    names = [*settings.topics.all(), *internal_topics(settings)]
    asyncio.run(ensure_topics(bootstrap, names, settings.topic_partitions))
    asyncio.run(produce_all(bootstrap, settings.topics.events, events))
    spec = next(s for s in SERVICES if s.name == "scorer")
    worker = ServiceProcess(spec, env, workdir / "scorer.log", free_port())
    worker.start()
    try:
        worker.wait_ready()
        deadline = time.monotonic() + timeout
        first_at = first_count = None
        count = 0
        while time.monotonic() < deadline:
            count = scored(worker.url)
            now = time.perf_counter()
            if count and first_at is None:
                first_at, first_count = now, count
            if count >= len(events):
                break
            time.sleep(0.1)
        if first_at is None or first_count is None or now <= first_at:
            return float("nan")
        rate = (count - first_count) / (now - first_at)
        if count < len(events):
            print(f"  (timed out after {count} of {len(events)} events)")
        return rate
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core-events", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--batch-max", type=int, default=2000, help="BATON_SCORER_BATCH_MAX")
    parser.add_argument("--per-event", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument(
        "--accounts",
        type=int,
        default=0,
        help="also run the worker with every lead at one of this many companies "
        "(a work email) and the rules' accounts section on",
    )
    args = parser.parse_args()

    core_events = make_events(args.core_events, args.leads, seed=7, spacing_s=10, id_prefix="b")
    core_rate, transitions = bench_core(core_events, args.profile)
    print(
        f"core:   {core_rate:,.0f} events/s, {core.KIND} core "
        f"({len(core_events):,} events, {transitions:,} transitions)"
    )
    figures: dict[str, float | int | str] = {
        "core_events_per_s": round(core_rate),
        "core": core.KIND,
    }
    if core.KIND == "native":
        reference = bench_reference(core_events)
        print(f"core:   {reference:,.0f} events/s, the Python reference core")
        figures["python_core_events_per_s"] = round(reference)

    events = make_events(args.events, args.leads, seed=11, spacing_s=10, id_prefix="b")
    with kafka_broker() as bootstrap:
        rate = bench_worker(bootstrap, events, args.batch_max, args.timeout)
        print(
            f"worker: {rate:,.0f} events/s end to end "
            f"({len(events):,} events, batches of up to {args.batch_max})"
        )
        figures["worker_events_per_s"] = round(rate)
        if args.per_event:
            slow = events[: min(len(events), 5_000)]
            per_event = bench_worker(bootstrap, slow, 1, args.timeout)
            print(
                f"worker: {per_event:,.0f} events/s with one event per batch ({len(slow):,} events)"
            )
            figures["worker_per_event_events_per_s"] = round(per_event)
        if args.accounts:
            at_companies = [
                e.model_copy(
                    update={"email": f"{e.lead_id}@co{hash_of(e.lead_id, args.accounts)}.example"}
                )
                for e in events
            ]
            rules = DEFAULT_RULES_TEXT + ACCOUNTS_SECTION
            with_accounts = bench_worker(
                bootstrap, at_companies, args.batch_max, args.timeout, rules
            )
            print(
                f"worker: {with_accounts:,.0f} events/s with every lead at one of "
                f"{args.accounts:,} companies, accounts on"
            )
            figures["worker_accounts_events_per_s"] = round(with_accounts)
    figures["events"] = args.events
    print_figures(figures)


ACCOUNTS_SECTION = """
accounts:
  thresholds: {engaged: 80, sales_ready: 200}
"""
DEFAULT_RULES_TEXT = files("baton_scorer").joinpath("default_rules.yaml").read_text()


def hash_of(lead_id: str, companies: int) -> int:
    """The company of a bench lead (``lead-<n>``): spread evenly."""
    return int(lead_id.rsplit("-", 1)[1]) % companies


if __name__ == "__main__":
    main()
