"""bench/sla: open 100,000 SLA clocks with deadlines spread over a few minutes and
measure how late the monitor fires their warnings and breaches.

    uv run python bench/sla.py [--clocks 100000] [--spread-seconds 180] [--monitors 1]
                               [--consume 20000] [--backlog 20000]

Runs against the real broker and PostgreSQL named by ``KAFKA_BOOTSTRAP_SERVERS`` and
``DATABASE_URL`` (required), in a fresh database and topic prefix that are removed at
the end. The monitors are ``SlaService`` instances in this process (``--monitors 2``
shares the sweep between two, as two deployments would). Clocks are opened through
``ClockStore.open_many`` (the path the consumer takes, ``started`` events included) in
batches of 1,000; every due time (50 % and 80 % warnings, deadline) lies after the
seeding, so lateness measures the sweep only.

Lateness of an event = when a separate consumer (its own process) received it from
``leads.sla`` minus when it was due. A consume run (``--consume``) puts that many SQL
transitions and their assignments on the topics while no monitor runs, starts one, and
measures the records/s its batched consumer opens (and stops) clocks at, from the
first committed batch to the last. A last run (``--backlog``) stores clocks whose
deadlines passed while no monitor ran, starts one, and measures how fast it catches up:
the sweep's capacity, where the first run measures the rate the deadlines ask for.
Prints the figures, then one line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import print_figures  # noqa: E402

from baton_shared.logs import configure_logging  # noqa: E402

configure_logging("WARNING", "console")  # before the service modules bind their loggers

from baton_shared.database import make_sessionmaker, migrate  # noqa: E402
from baton_shared.kafka import ensure_topics  # noqa: E402
from baton_shared.schemas import Assignment, Stage, Transition  # noqa: E402
from baton_sla_monitor.clocks import ClockStore  # noqa: E402
from baton_sla_monitor.config import SlaSettings  # noqa: E402
from baton_sla_monitor.service import MIGRATIONS, VERSION_TABLE, SlaService  # noqa: E402

SEED_BATCH = 1000


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def database_url_for(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def plain_dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


async def create_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(plain_dsn(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(plain_dsn(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


@asynccontextmanager
async def fresh_run(window_seconds: float) -> AsyncIterator[SlaSettings]:
    """Settings for one run in a fresh database and topic prefix (``window_seconds``: the
    express SQL window); both are removed when the run ends."""
    bootstrap, server_url = os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["DATABASE_URL"]
    run_id = uuid.uuid4().hex[:8]
    db_name, prefix = f"bench_sla_{run_id}", f"bench-sla-{run_id}."
    await create_database(server_url, db_name)
    try:
        yield SlaSettings(
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            DATABASE_URL=database_url_for(server_url, db_name),
            BATON_TOPIC_PREFIX=prefix,
            BATON_ENV="test",
            BATON_SLA_EXPRESS_SQL_SECONDS=str(window_seconds),
            BATON_LOG_LEVEL="WARNING",
        )  # type: ignore[call-arg]
    finally:
        await drop_database(server_url, db_name)
        await delete_topics(bootstrap, prefix)


def assignment(i: int, assigned_at: datetime) -> Assignment:
    return Assignment(
        assignment_id=f"bench-{i}-{uuid.uuid4().hex[:8]}",
        transition_id=uuid.uuid4().hex,
        lead_id=f"lead-{i}",
        rep_id=f"rep-{i % 50}",
        strategy="round_robin",
        express=True,
        qualified_at=assigned_at - timedelta(seconds=0.3),
        assigned_at=assigned_at,
        pool=f"team-{i % 4}",
    )


class Collector:
    """Reads ``leads.sla`` and records, per fired event, how late it arrived."""

    def __init__(self, bootstrap: str, topic: str):
        self.bootstrap, self.topic = bootstrap, topic
        self.lateness: list[float] = []
        self.decision_lateness: list[float] = []
        self.received_at: list[float] = []
        self.produced_at: list[float] = []  # the record's timestamp: when the monitor sent it
        self.breached: set[str] = set()
        self.duplicates = 0
        self.started = 0
        self._seen: set[str] = set()

    async def run(self, expected_breaches: int) -> None:
        self.consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_bytes=50 * 1024 * 1024,
            max_partition_fetch_bytes=10 * 1024 * 1024,
        )
        await self.consumer.start()
        try:
            while len(self.breached) < expected_breaches:
                batch = await self.consumer.getmany(timeout_ms=200, max_records=5000)
                now = time.time()
                for records in batch.values():
                    for record in records:
                        self._record(orjson.loads(record.value), now, record.timestamp / 1000)
        finally:
            await self.consumer.stop()

    def _record(self, event: dict, received: float, produced: float) -> None:
        if event["event_id"] in self._seen:
            self.duplicates += 1
            return
        self._seen.add(event["event_id"])
        status = event["status"]
        if status == "started":
            self.started += 1
            return
        if status == "breached":
            self.breached.add(event["clock_id"])
            due = datetime.fromisoformat(event["deadline_at"]).timestamp()
        elif status == "at_risk":
            started = datetime.fromisoformat(event["started_at"]).timestamp()
            due = started + event["warning_fraction"] * event["window_seconds"]
        else:
            return
        self.lateness.append(received - due)
        self.decision_lateness.append(datetime.fromisoformat(event["at"]).timestamp() - due)
        self.received_at.append(received)
        self.produced_at.append(produced)


def collect(bootstrap: str, topic: str, expected_breaches: int, results: Connection) -> None:
    """The collector's own process, so reading the topic takes no CPU from the monitor."""
    collector = Collector(bootstrap, topic)
    asyncio.run(collector.run(expected_breaches))
    results.send(
        {
            "lateness": collector.lateness,
            "decision_lateness": collector.decision_lateness,
            "received_at": collector.received_at,
            "produced_at": collector.produced_at,
            "breached": len(collector.breached),
            "duplicates": collector.duplicates,
        }
    )


class CollectorProcess:
    """:func:`collect` started in its own process, and its figures once it is done."""

    def __init__(self, bootstrap: str, topic: str, expected_breaches: int):
        self._receive, send = multiprocessing.Pipe(duplex=False)
        self._process = multiprocessing.get_context("spawn").Process(
            target=collect, args=(bootstrap, topic, expected_breaches, send), daemon=True
        )
        self._process.start()

    async def results(self, timeout_seconds: float, failure: str) -> dict:
        """The figures once every expected breach was seen; exits with ``failure`` if
        that takes more than ``timeout_seconds``."""
        if not await asyncio.to_thread(self._receive.poll, timeout_seconds):
            raise SystemExit(failure)
        results = self._receive.recv()
        self._process.join(10)
        return results


async def due_query_plan(service: SlaService) -> str:
    async with service.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "EXPLAIN SELECT * FROM sla.clocks WHERE status = 'open' AND next_fire_at <= now() "
                "ORDER BY next_fire_at LIMIT 1000 FOR UPDATE SKIP LOCKED"
            )
        )
        return "\n".join(r[0] for r in rows)


async def bench(args: argparse.Namespace) -> dict:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap or not os.environ.get("DATABASE_URL"):
        raise SystemExit("set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (a real broker and server)")
    async with fresh_run(args.window_seconds) as settings:
        monitors = [SlaService(settings) for _ in range(args.monitors)]
        try:
            for monitor in monitors:
                await monitor.start()
            collecting = CollectorProcess(bootstrap, settings.topics.sla, args.clocks)

            # Every due time after seeding: first warning at t0 + window/2 >= seed budget.
            t0 = datetime.now(UTC) + timedelta(seconds=args.seed_budget_seconds)
            step = args.spread_seconds / args.clocks
            first_due = t0 + timedelta(seconds=args.window_seconds * 0.5)
            print(
                f"seeding {args.clocks:,} clocks; deadlines from "
                f"{(t0 + timedelta(seconds=args.window_seconds)):%H:%M:%S} over "
                f"{args.spread_seconds:.0f} s; {args.monitors} monitor(s)"
            )
            seed_started = time.monotonic()
            for start in range(0, args.clocks, SEED_BATCH):
                batch = [
                    assignment(i, t0 + timedelta(seconds=i * step))
                    for i in range(start, min(args.clocks, start + SEED_BATCH))
                ]
                await monitors[0].clocks.open_many(batch)
            seed_seconds = time.monotonic() - seed_started
            seeded_at = datetime.now(UTC)
            if seeded_at > first_due:
                print(f"WARNING: seeding ended {seeded_at - first_due} after the first due time")
            print(f"seeded in {seed_seconds:.1f} s ({args.clocks / seed_seconds:,.0f} clocks/s)")
            plan = await due_query_plan(monitors[0])
            uses_index = "ix_clocks_open_next_fire" in plan
            print(f"due query uses the partial index: {uses_index}\n{plan}")

            budget = args.seed_budget_seconds + args.window_seconds + args.spread_seconds + 300
            results = await collecting.results(
                budget, f"not every clock breached within {budget:.0f} s"
            )
        finally:
            for monitor in monitors:
                await monitor.stop()

    lateness, received_at = results["lateness"], results["received_at"]
    fired = len(lateness)
    span = max(received_at) - min(received_at)
    per_second: dict[int, int] = {}
    for at in received_at:
        per_second[int(at)] = per_second.get(int(at), 0) + 1
    figures = {
        "clocks": args.clocks,
        "monitors": args.monitors,
        "spread_seconds": args.spread_seconds,
        "window_seconds": args.window_seconds,
        "seed_clocks_per_s": round(args.clocks / seed_seconds),
        "fired_events": fired,
        "breached_clocks": results["breached"],
        "duplicate_events": results["duplicates"],
        "lateness_p50_s": round(percentile(lateness, 0.50), 4),
        "lateness_p99_s": round(percentile(lateness, 0.99), 4),
        "lateness_max_s": round(max(lateness), 4),
        "decision_lateness_p99_s": round(percentile(results["decision_lateness"], 0.99), 4),
        "events_per_s_sustained": round(fired / span) if span else None,
        "events_per_s_peak": max(per_second.values()),
        "due_query_uses_index": uses_index,
    }
    print(
        f"fired {fired:,} events (at_risk + breached) for {results['breached']:,} clocks; "
        f"{results['duplicates']} duplicates\n"
        f"lateness (received on leads.sla - due): p50 {figures['lateness_p50_s'] * 1000:.0f} ms, "
        f"p99 {figures['lateness_p99_s'] * 1000:.0f} ms, max {figures['lateness_max_s']:.3f} s\n"
        f"sustained {figures['events_per_s_sustained']} events/s over {span:.0f} s, "
        f"peak {figures['events_per_s_peak']} events/s"
    )
    return figures


async def drain(args: argparse.Namespace) -> dict:
    """The monitor was down while ``--backlog`` deadlines passed: how fast does it catch
    up? Clocks are stored without their ``started`` events, then the monitor starts."""
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    async with fresh_run(args.window_seconds) as settings:
        monitor = SlaService(settings)
        try:
            await migrate(monitor.engine, MIGRATIONS, VERSION_TABLE)
            offline = ClockStore(make_sessionmaker(monitor.engine), monitor.policy, no_publish)
            overdue = datetime.now(UTC) - timedelta(seconds=args.window_seconds + 60)
            for start in range(0, args.backlog, SEED_BATCH):
                await offline.open_many(
                    [
                        assignment(i, overdue)
                        for i in range(start, min(args.backlog, start + SEED_BATCH))
                    ]
                )
            collecting = CollectorProcess(bootstrap, settings.topics.sla, args.backlog)
            started = time.time()
            await monitor.start()
            results = await collecting.results(600, "the backlog did not drain within 600 s")
        finally:
            await monitor.stop()
    first, last = min(results["produced_at"]), max(results["produced_at"])
    rate = args.backlog / (last - first) if last > first else None
    print(
        f"backlog: {args.backlog:,} deadlines passed while down; the first breach went out "
        f"{first - started:.1f} s after start (start-up included), all {last - started:.1f} s "
        f"after: {rate or 0:,.0f} events/s while draining"
    )
    return {
        "backlog_clocks": args.backlog,
        "backlog_first_breach_after_start_s": round(first - started, 2),
        "backlog_drain_events_per_s": round(rate) if rate else None,
    }


def transition(i: int, at: datetime) -> Transition:
    return Transition(
        transition_id=f"bench-t-{i}-{uuid.uuid4().hex[:8]}",
        lead_id=f"lead-{i}",
        from_stage=Stage.MQL,
        to_stage=Stage.SQL,
        score=110,
        fit=40,
        engagement=70,
        reason="bench",
        trigger_event_id=uuid.uuid4().hex,
        occurred_at=at,
        rules_version="bench",
    )


async def committed(admin: AIOKafkaAdminClient, group: str) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    return sum(o.offset for o in offsets.values() if o.offset > 0)


async def consume(args: argparse.Namespace) -> dict:
    """``--consume`` transitions and their assignments wait on the topics; a monitor
    starts: how many records/s does its batched consumer open (and stop) clocks at?"""
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    async with fresh_run(3600) as settings:
        topics = settings.topics
        await ensure_topics(bootstrap, topics.all(), settings.topic_partitions)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        monitor = SlaService(settings)
        await producer.start()
        await admin.start()
        try:
            now = datetime.now(UTC)
            for i in range(args.consume):
                t = transition(i, now)
                a = assignment(i, now + timedelta(seconds=0.3)).model_copy(
                    update={"transition_id": t.transition_id, "qualified_at": t.occurred_at}
                )
                key = t.lead_id.encode()
                await producer.send(topics.transitions, t.to_bytes(), key=key)
                await producer.send(topics.assignments, a.to_bytes(), key=key)
            await producer.flush()
            total = 2 * args.consume
            group = topics.group("baton-sla-monitor")
            await monitor.start()
            first = last = None
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                done = await committed(admin, group)
                if done and first is None:
                    first = (time.monotonic(), done)
                if done >= total:
                    last = time.monotonic()
                    break
                await asyncio.sleep(0.1)
            if first is None or last is None:
                raise SystemExit(f"the monitor did not consume {total:,} records within 600 s")
            async with monitor.engine.connect() as conn:
                opened = (
                    await conn.execute(text("SELECT measure, count(*) FROM sla.clocks GROUP BY 1"))
                ).all()
        finally:
            await monitor.stop()
            await producer.stop()
            await admin.close()
    rate = (total - first[1]) / (last - first[0]) if last > first[0] else None
    print(
        f"consume: {total:,} records ({args.consume:,} transitions + assignments) opened "
        f"{dict(opened)} clocks at {rate or 0:,.0f} records/s (batched, one transaction "
        f"per batch)"
    )
    return {"consume_records": total, "consume_records_per_s": round(rate) if rate else None}


async def no_publish(events: object) -> None:
    """Seeding a backlog: the clocks' ``started`` events are long gone."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clocks", type=int, default=100_000)
    parser.add_argument("--spread-seconds", type=float, default=180)
    parser.add_argument("--window-seconds", type=float, default=60)
    parser.add_argument("--seed-budget-seconds", type=float, default=60)
    parser.add_argument("--monitors", type=int, default=1)
    parser.add_argument(
        "--consume", type=int, default=20_000, help="transitions + assignments to consume; 0: skip"
    )
    parser.add_argument(
        "--backlog", type=int, default=20_000, help="overdue clocks for the catch-up run; 0: skip"
    )
    args = parser.parse_args()
    figures = asyncio.run(bench(args))
    if args.consume:
        figures |= asyncio.run(consume(args))
    if args.backlog:
        figures |= asyncio.run(drain(args))
    print_figures(figures)


if __name__ == "__main__":
    main()
