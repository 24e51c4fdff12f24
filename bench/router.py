"""Router latency and throughput through the real broker and database.

    uv run python bench/router.py [--rate 200] [--seconds 15] [--burst 3000] [--reps 8]

Starts one router process (``baton_router.main``) on its own topic prefix and database,
a local webhook receiver, and ``--reps`` reps. Then:

1. **steady**: produces SQL transitions to ``leads.transitions`` at ``--rate`` per second
   for ``--seconds``, and measures, per lead, the time from the transition being handed
   to the producer to its signed webhook arriving at the receiver: p50 / p99 / max.
2. **ceiling**: produces ``--burst`` transitions as fast as possible and measures how
   many assignments per second reach the receiver (first produce → last webhook).

Kafka and PostgreSQL come from ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` when set,
else from the local dev stack (``.devstack``, as ``make up`` starts it). Only 127.0.0.1;
every loop is bounded. The last line is the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import QuietServer, infra_env, print_figures, stage_breakdown

from baton_devstack.ports import free_port
from baton_devstack.services import SERVICES, ServiceProcess
from baton_shared.schemas import Stage, Transition

ADMIN = "bench-admin-token-0123456789"


class Receiver:
    """Records when each lead's webhook arrived (wall clock, as the producer side uses)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.assigned_at: dict[str, float] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                at = time.time()
                data = orjson.loads(body).get("data", {})
                key = data.get("transition_id", "")
                with receiver.lock:
                    receiver.arrived.setdefault(key, at)
                    if "assigned_at" in data:
                        assigned = datetime.fromisoformat(data["assigned_at"]).timestamp()
                        receiver.assigned_at.setdefault(key, assigned)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, ids: set[str]) -> int:
        with self.lock:
            return sum(1 for i in ids if i in self.arrived)


def transition(run: str, n: int) -> Transition:
    return Transition(
        transition_id=f"{run}-{n}",
        lead_id=f"bench-{run}-{n}",
        from_stage=Stage.MQL,
        to_stage=Stage.SQL,
        score=120,
        fit=40,
        engagement=80,
        reason="bench",
        express=n % 4 == 0,
        trigger_event_id=f"evt-{run}-{n}",
        trigger_event="Demo Requested",
        occurred_at=datetime.now(UTC),
        rules_version="bench",
    )


async def produce(
    producer: AIOKafkaProducer, topic: str, items: list[Transition], rate: float | None
) -> dict[str, float]:
    """Hand ``items`` to the producer at ``rate`` per second (None: as fast as possible);
    returns when each was handed over."""
    sent: dict[str, float] = {}
    start = time.monotonic()
    pending = []
    for i, item in enumerate(items):
        if rate is not None:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        sent[item.transition_id] = time.time()
        # emitted_at as the scorer sets it: the router's consume-lag histogram reads it.
        value = item.model_copy(update={"emitted_at": datetime.now(UTC)}).to_bytes()
        pending.append(await producer.send(topic, value, key=item.lead_id.encode()))
    await asyncio.gather(*pending)
    return sent


async def wait_all(receiver: Receiver, ids: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while receiver.count(ids) < len(ids) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


STAGES = {
    "consume": "baton_router_consume_lag_seconds",
    "route_tx": "baton_router_route_batch_seconds",
    "dispatch_wait": "baton_router_dispatch_wait_seconds",
    "http": "baton_router_webhook_request_seconds",
}


async def histograms(http: httpx.AsyncClient, url: str) -> dict[str, dict[float, float]]:
    """The router's stage histograms: cumulative bucket counts by upper bound, by stage."""
    text = (await http.get(f"{url}/metrics")).text
    out: dict[str, dict[float, float]] = {stage: {} for stage in STAGES}
    for line in text.splitlines():
        for stage, name in STAGES.items():
            if line.startswith(f"{name}_bucket{{"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                out[stage][float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def create_database(url: str, name: str) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def router_process(infra: dict[str, str], run: str) -> tuple[ServiceProcess, str]:
    """A router process (not started yet) on a new database and topic prefix named
    ``run``, and that database's URL."""
    dsn = await create_database(infra["DATABASE_URL"], run)
    env = {
        **infra,
        "DATABASE_URL": dsn,
        "BATON_ENV": "test",
        "BATON_TOPIC_PREFIX": f"{run}.",
        "BATON_ADMIN_TOKEN": ADMIN,
        "BATON_LOG_LEVEL": "WARNING",
        "BATON_DISPATCH_POLL_SECONDS": "0.2",
    }
    spec = next(s for s in SERVICES if s.name == "router")
    logs = Path(tempfile.mkdtemp(prefix="baton-bench-"))
    return ServiceProcess(spec, env, logs / "router.log", free_port()), dsn


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--burst", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=8)
    args = parser.parse_args()
    if not 0 < args.rate <= 5000 or not 0 < args.seconds <= 300 or not 0 < args.burst <= 50_000:
        sys.exit("--rate ≤ 5000, --seconds ≤ 300, --burst ≤ 50000")

    infra = infra_env()
    run = f"bench{uuid.uuid4().hex[:6]}"
    router, _ = await router_process(infra, run)
    receiver = Receiver()
    router.start()
    try:
        router.wait_ready()
        async with httpx.AsyncClient(timeout=10) as http:
            for i in range(args.reps):
                response = await http.post(
                    f"{router.url}/v1/reps",
                    headers={"Authorization": f"Bearer {ADMIN}"},
                    json={
                        "name": f"Rep {i}",
                        "email": f"rep{i}@example.com",
                        "webhook_url": f"{receiver.url}/rep{i}",
                    },
                )
                response.raise_for_status()
        producer = AIOKafkaProducer(
            bootstrap_servers=infra["KAFKA_BOOTSTRAP_SERVERS"], acks="all", linger_ms=1
        )
        await producer.start()
        topic = f"{run}.leads.transitions"
        try:
            warm = [transition(f"{run}w", n) for n in range(50)]
            await produce(producer, topic, warm, 100)
            await wait_all(receiver, {t.transition_id for t in warm}, 60)

            steady = [transition(f"{run}s", n) for n in range(int(args.rate * args.seconds))]
            print(f"steady: {len(steady)} SQLs at {args.rate:.0f}/s ...", flush=True)
            cpu_before = cpu_seconds(router.pid)
            async with httpx.AsyncClient(timeout=10) as http:
                stages_before = await histograms(http, router.url)
            sent = await produce(producer, topic, steady, args.rate)
            await wait_all(receiver, set(sent), 60)
            async with httpx.AsyncClient(timeout=10) as http:
                stages = stage_breakdown(stages_before, await histograms(http, router.url))
            cpu_per_sql_ms = (cpu_seconds(router.pid) - cpu_before) / len(steady) * 1000
            latencies = [
                (receiver.arrived[i] - sent[i]) * 1000 for i in sent if i in receiver.arrived
            ]
            to_decision = [
                (receiver.assigned_at[i] - sent[i]) * 1000
                for i in sent
                if i in receiver.assigned_at
            ]

            burst = [transition(f"{run}b", n) for n in range(args.burst)]
            print(f"ceiling: {len(burst)} SQLs as fast as possible ...", flush=True)
            burst_sent = await produce(producer, topic, burst, None)
            await wait_all(receiver, set(burst_sent), 180)
            got = [receiver.arrived[i] for i in burst_sent if i in receiver.arrived]
            elapsed = max(got) - min(burst_sent.values()) if got else float("inf")
        finally:
            await producer.stop()
    finally:
        router.stop()
        receiver.server.shutdown()

    figures = {
        "bench": "router",
        "rate_per_s": args.rate,
        "sqls": len(steady),
        "delivered": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "to_decision_p50_ms": round(statistics.median(to_decision), 1) if to_decision else None,
        "to_decision_p99_ms": round(percentile(to_decision, 0.99), 1) if to_decision else None,
        "router_cpu_ms_per_sql": round(cpu_per_sql_ms, 2),
        "stages": stages,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "ceiling_sqls_per_s": round(len(got) / elapsed, 1) if got else 0.0,
        "burst": args.burst,
        "burst_delivered": len(got),
        "reps": args.reps,
    }
    print(
        f"steady {args.rate:.0f}/s: {figures['delivered']}/{figures['sqls']} delivered, "
        f"transition produced → webhook received p50 {figures['p50_ms']} ms, "
        f"p99 {figures['p99_ms']} ms, max {figures['max_ms']} ms"
    )
    print(
        f"  of which produced → routing decision (consume, before the transaction): "
        f"p50 {figures['to_decision_p50_ms']} ms, p99 {figures['to_decision_p99_ms']} ms"
    )
    for stage, row in stages.items():
        print(
            f"  stage {stage:<13} p50 ≤ {row['p50_le_ms']} ms, p99 ≤ {row['p99_le_ms']} ms "
            f"({row['count']:.0f} observations)"
        )
    print(
        f"  router CPU {figures['router_cpu_ms_per_sql']} ms per SQL "
        f"(machine load average {figures['load_average_1m']} on {os.cpu_count()} cores)"
    )
    print(
        f"ceiling: {figures['burst_delivered']}/{args.burst} in {elapsed:.1f} s = "
        f"{figures['ceiling_sqls_per_s']} SQLs/s assigned and delivered"
    )
    floor_ok = figures["p99_ms"] is not None and figures["p99_ms"] < 100
    print(f"floor (p99 < 100 ms at 200/s): {'met' if floor_ok else 'NOT met'}")
    print_figures(figures)


if __name__ == "__main__":
    asyncio.run(main())
