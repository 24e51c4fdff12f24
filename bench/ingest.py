"""bench/ingest: drive the ingest service on loopback against the real broker.

Three scenarios, each for a fixed time: batches of 100 events, single events at a
fixed concurrency, and gzip batches of 100. Prints events/s and request latency
p50/p99 per scenario, then one JSON line with every figure.

    uv run python bench/ingest.py [--seconds 10] [--concurrency 64] [--batch-concurrency 4]
                                  [--workers 2] [--batch-rate EVENTS_PER_S] [--profile]

--workers sets BATON_INGEST_WORKERS (server processes). With --profile, py-spy samples
the service during each scenario and the script prints its CPU self time by layer
(Baton's code, pydantic, aiokafka, FastAPI/Starlette, uvicorn, asyncio, idle).

Uses $KAFKA_BOOTSTRAP_SERVERS when set, else starts a local broker. The load generator
(aiohttp) runs on the same 2 cores as the service and the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import kafka_broker, percentile, print_figures

from baton_devstack.ports import free_port
from baton_devstack.services import SERVICES, ServiceProcess

WRITE_KEY = "bench-write-key"
AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()


def event(i: int) -> dict:
    return {
        "type": "track",
        "userId": f"lead-{i % 5000}",
        "event": "Pricing Viewed",
        "messageId": uuid.uuid4().hex,
        "properties": {"plan": "team", "seats": 12},
        "context": {
            "page": {"path": "/pricing", "url": "https://acme.example/pricing"},
            "library": {"name": "analytics-python", "version": "2.4.0"},
        },
        "timestamp": "2026-11-23T10:00:00Z",
    }


def make_bodies(count: int, batch: int, gz: bool) -> list[bytes]:
    """Request bodies built before the clock starts, so the load generator (on the same
    two cores) spends its time sending, not building JSON. Every event id is unique."""
    bodies = []
    for n in range(count):
        base = n * batch
        if batch > 1:
            body = orjson.dumps({"batch": [event(base + k) for k in range(batch)]})
        else:
            body = orjson.dumps(event(base))
        bodies.append(gzip.compress(body, compresslevel=5) if gz else body)
    return bodies


async def scenario(
    url: str,
    seconds: float,
    concurrency: int,
    batch: int,
    bodies: list[bytes],
    gz: bool,
    rate: float | None = None,
) -> dict:
    """Closed loop (each connection sends as fast as answers come back), or, with
    ``rate`` (events/s), open loop: requests start on a fixed schedule and latency is
    counted from the scheduled start, so a stall is not hidden (no coordinated omission)."""
    latencies: list[float] = []
    events = 0
    errors = 0
    statuses: dict[int, int] = {}
    next_body = iter(bodies)
    interval = batch / rate if rate else 0.0
    slot = {"next": time.perf_counter()}
    deadline = time.perf_counter() + seconds
    path = "/v1/batch" if batch > 1 else "/v1/track"
    headers = {"Authorization": AUTH, "Content-Type": "application/json"}
    if gz:
        headers["Content-Encoding"] = "gzip"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal events, errors
            while time.perf_counter() < deadline:
                body = next(next_body, None)
                if body is None:  # ran out of prepared bodies: stop early, rate still valid
                    return
                if interval:
                    started = slot["next"]
                    slot["next"] += interval
                    await asyncio.sleep(max(0.0, started - time.perf_counter()))
                else:
                    started = time.perf_counter()
                async with session.post(url + path, data=body, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
                latencies.append((time.perf_counter() - started) * 1000)
                if ok:
                    events += batch
                else:
                    errors += 1
                    statuses[response.status] = statuses.get(response.status, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {
        "events_per_s": round(events / elapsed),
        "requests_per_s": round(len(latencies) / elapsed),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "errors": errors,
        **({"error_statuses": str(statuses)} if statuses else {}),
    }


def start_profiler(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    py_spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--subprocesses",  # the uvicorn workers, not just their supervisor
            "--duration",
            str(int(seconds)),
            "--format",
            "raw",
            "--output",
            str(out),
            "--rate",
            "200",
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


CATEGORIES = (
    ("idle (event loop waiting)", ("selectors.py", "base_events.py:_run_once", "select")),
    ("baton (ingest code)", ("baton_",)),
    ("pydantic", ("pydantic",)),
    ("aiokafka (producer)", ("aiokafka/",)),
    ("fastapi/starlette", ("fastapi/", "starlette/")),
    ("uvicorn/httptools", ("uvicorn/", "httptools")),
    ("asyncio", ("asyncio/",)),
)


def summarise_profile(raw: Path) -> list[tuple[str, float]]:
    """py-spy's collapsed stacks → share of samples by where the leaf frame runs, i.e.
    self time by layer."""
    totals: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples += int(count)
        leaf = stack.split(";")[-1]
        category = next(
            (name for name, marks in CATEGORIES if any(mark in leaf for mark in marks)),
            "other (stdlib, C)",
        )
        totals[category] = totals.get(category, 0) + int(count)
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    return [(label, round(100 * n / max(samples, 1), 1)) for label, n in ranked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch-concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="BATON_INGEST_WORKERS")
    parser.add_argument(
        "--batch-rate",
        type=float,
        default=None,
        help="open loop for the batch scenarios: this many events/s on a fixed schedule "
        "(spread over 16 connections), latency from each scheduled start",
    )
    parser.add_argument("--profile", action="store_true", help="sample the service with py-spy")
    args = parser.parse_args()
    spec = next(s for s in SERVICES if s.name == "ingest")
    with kafka_broker() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        proc = ServiceProcess(
            spec,
            {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "BATON_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:6]}.",
                "BATON_ENV": "test",
                "BATON_INGEST_WRITE_KEYS": WRITE_KEY,
                "BATON_INGEST_RATE_LIMIT": "10000000/second",
                "BATON_INGEST_ACCESS_LOG": "false",
                "BATON_LOG_LEVEL": "WARNING",
                "BATON_INGEST_WORKERS": str(args.workers),
            },
            Path(tmp) / "ingest.log",
            free_port(),
        )
        proc.start()
        try:
            proc.wait_ready()
            results = {}
            for name, conc, batch, gz in (
                ("batch100", args.batch_concurrency, 100, False),
                ("single", args.concurrency, 1, False),
                ("gzip_batch100", args.batch_concurrency, 100, True),
            ):
                # Enough bodies for ~40,000 events/s (or 6,000 requests/s) for the run.
                count = int(args.seconds * (400 if batch > 1 else 6000))
                warm = make_bodies(count // 2, batch, gz)
                bodies = make_bodies(count, batch, gz)
                asyncio.run(scenario(proc.url, 4, conc, batch, warm, gz))  # warm-up
                raw = Path(tmp) / f"{name}.prof"
                profiler = (
                    start_profiler(proc.pid, args.seconds, raw)
                    if args.profile and proc.pid
                    else None
                )
                rate = args.batch_rate if batch > 1 else None
                results[name] = asyncio.run(
                    scenario(proc.url, args.seconds, 16 if rate else conc, batch, bodies, gz, rate)
                )
                r = results[name]
                if profiler is not None:
                    profiler.wait(timeout=args.seconds + 30)
                    for label, share in summarise_profile(raw):
                        print(f"    {share:5.1f}%  {label}")
                print(
                    f"{name:>14}: {r['events_per_s']:>7} events/s  {r['requests_per_s']:>6} req/s"
                    f"  p50 {r['p50_ms']:>6} ms  p99 {r['p99_ms']:>7} ms  errors {r['errors']}",
                    flush=True,
                )
        finally:
            proc.stop()
    print_figures({f"{name}_{k}": v for name, r in results.items() for k, v in r.items()})


if __name__ == "__main__":
    main()
