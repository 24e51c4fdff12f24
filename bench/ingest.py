"""bench/ingest: drive the ingest service on loopback against the real broker.

Scenarios, each for a fixed time after a warm-up:

- ``batch100``: batches of 100 events, closed loop (every connection sends as soon as
  its answer is back) over ``--batch-concurrency`` connections: the capacity figure.
- ``batch100_open``: batches of 100 on a fixed schedule of ``--batch-rate`` events/s
  (open loop, latency from each scheduled start, so a stall is never hidden) over
  ``--open-connections`` connections: the latency-at-rate figure.
- ``single``: one event per request, closed loop, ``--concurrency`` connections.
- ``gzip_batch100``: gzip batches of 100, closed loop.

For each: events/s, requests/s, p50/p99 of the latency of every request (send to
answer), the service's CPU time per event (utime+stime of its processes from /proc:
a figure that holds on a shared machine, where wall-clock rates do not), how that CPU
was split between the server workers, and with ``--profile`` where the time goes
(py-spy samples of the workers: self time by layer and the hottest functions; off by
default, as it takes CPU from the service on two cores). Then ``bare_producer``: a bare
aiokafka producer (``acks=all``, idempotent, as ingest's) storing the same batches (each
event's JSON as a record, keyed by user id, one record batch per partition) on the same
broker, closed loop over ``--batch-concurrency`` senders; ``batch100_vs_bare`` is the
ratio of ``batch100``'s events/s to it. The last line is one JSON object with every
figure.

Connections: uvicorn's workers share one listening socket and the kernel hands each new
connection to whichever worker accepts first. With 4 keep-alive connections over 2
workers the split is often 3-1 or 4-0, leaving a worker short of work in a closed loop.
Trackers are many clients, so the batch scenarios use 16 or more connections: every
worker always has work queued.

``--handler-cpu`` instead measures the request path in-process, without HTTP or a load
generator: the ASGI app driven directly against the real broker, CPU µs per event.

    uv run python bench/ingest.py [--seconds 10] [--concurrency 64] [--batch-concurrency 16]
        [--batch-rate 20000] [--open-connections 32] [--workers 2] [--profile]
        [--scenarios batch100 batch100_open single gzip_batch100]
    uv run python bench/ingest.py --handler-cpu

Uses $KAFKA_BOOTSTRAP_SERVERS when set, else starts a local broker. The load generator
(aiohttp) runs on the same 2 cores as the service and the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import gzip
import os
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
from baton_shared.gc_tuning import tune_for_throughput
from baton_shared.kafka import durable_producer, ensure_topics
from baton_shared.producer import partition_for, send_batched

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
        "events": events,
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


IDLE_MARKS = ("selectors.py", "base_events.py:_run_once", "select")
CATEGORIES = (
    ("idle (event loop waiting)", IDLE_MARKS),
    ("baton (ingest code)", ("baton_",)),
    ("pydantic", ("pydantic",)),
    ("aiokafka (producer)", ("aiokafka/",)),
    ("fastapi/starlette", ("fastapi/", "starlette/")),
    ("uvicorn/httptools", ("uvicorn/", "httptools")),
    ("asyncio", ("asyncio/",)),
)


def summarise_profile(
    raw: Path, top: int = 10
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """py-spy's collapsed stacks → (share of samples by the layer the leaf frame runs in,
    i.e. self time by layer; the busiest leaf functions, as a share of busy samples)."""
    layers: dict[str, int] = {}
    leaves: dict[str, int] = {}
    samples = busy = 0
    for line in raw.read_text().splitlines() if raw.exists() else ():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        samples += n
        leaf = stack.split(";")[-1]
        category = next(
            (name for name, marks in CATEGORIES if any(mark in leaf for mark in marks)),
            "other (stdlib, C)",
        )
        layers[category] = layers.get(category, 0) + n
        if category != CATEGORIES[0][0]:
            busy += n
            leaves[leaf] = leaves.get(leaf, 0) + n
    by_layer = [(k, round(100 * n / max(samples, 1), 1)) for k, n in layers.items()]
    hottest = [(k, round(100 * n / max(busy, 1), 1)) for k, n in leaves.items()]
    return (
        sorted(by_layer, key=lambda kv: -kv[1]),
        sorted(hottest, key=lambda kv: -kv[1])[:top],
    )


def process_tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds (user + system) so far of ``root`` and every process below it."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
    tree = {root}
    grew = True
    while grew:
        below = {pid for pid, parent in parents.items() if parent in tree} - tree
        grew = bool(below)
        tree |= below
    return {pid: cpu[pid] for pid in tree if pid in cpu}


def cpu_figures(before: dict[int, float], after: dict[int, float], events: int) -> dict:
    """Service CPU µs per accepted event, and each busy process's share of that CPU."""
    spent = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    total = sum(spent.values())
    shares = sorted(
        (v / total for v in spent.values() if total and v / total >= 0.05), reverse=True
    )
    return {
        "server_cpu_us_per_event": round(1e6 * total / max(events, 1), 1),
        "worker_cpu_split": "/".join(f"{100 * x:.0f}" for x in shares),
    }


def run_scenarios(args: argparse.Namespace, proc: ServiceProcess, tmp: Path) -> dict[str, dict]:
    plan = (
        ("batch100", args.batch_concurrency, 100, False, None),
        ("batch100_open", args.open_connections, 100, False, args.batch_rate),
        ("single", args.concurrency, 1, False, None),
        ("gzip_batch100", args.batch_concurrency, 100, True, None),
    )
    results: dict[str, dict] = {}
    for name, conc, batch, gz, rate in plan:
        if args.scenarios and name not in args.scenarios:
            continue
        # Enough bodies for ~40,000 events/s (or 6,000 requests/s) for the run.
        count = int(args.seconds * (400 if batch > 1 else 6000))
        warm = make_bodies(count // 2, batch, gz)
        bodies = make_bodies(count, batch, gz)
        asyncio.run(scenario(proc.url, 4, conc, batch, warm, gz, rate))  # warm-up
        gc.collect()  # the bodies just built are not the service's garbage to pay for
        raw = tmp / f"{name}.prof"
        profiler = (
            start_profiler(proc.pid, args.seconds, raw) if args.profile and proc.pid else None
        )
        cpu_before = process_tree_cpu(proc.pid) if proc.pid else {}
        r = asyncio.run(scenario(proc.url, args.seconds, conc, batch, bodies, gz, rate))
        cpu_after = process_tree_cpu(proc.pid) if proc.pid else {}
        r.update(cpu_figures(cpu_before, cpu_after, r.pop("events")))
        results[name] = r
        loop = f"open loop at {rate:.0f} events/s" if rate else "closed loop"
        print(
            f"{name:>14}: {r['events_per_s']:>7} events/s  {r['requests_per_s']:>6} req/s"
            f"  p50 {r['p50_ms']:>6} ms  p99 {r['p99_ms']:>7} ms  errors {r['errors']}"
            f"  | {r['server_cpu_us_per_event']} CPU µs/event, workers {r['worker_cpu_split']}%"
            f"  ({conc} connections, {loop})",
            flush=True,
        )
        if profiler is not None:
            profiler.wait(timeout=args.seconds + 30)
            by_layer, hottest = summarise_profile(raw)
            print("    where the service's time goes (py-spy, self time):")
            for label, share in by_layer:
                print(f"      {share:5.1f}%  {label}")
            print("    hottest functions (share of busy samples):")
            for frame, share in hottest:
                print(f"      {share:5.1f}%  {frame}")
    return results


async def bare_producer(bootstrap: str, seconds: float, concurrency: int) -> dict:
    """What the broker takes from a bare producer: the scenario's batches of 100 (each
    event's JSON a record keyed by user id), closed loop, every batch acknowledged."""
    topic = f"bench-bare-{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, [topic], 3)
    producer = durable_producer(bootstrap, client_id="bench-bare", max_batch_size=512 * 1024)
    await producer.start()
    batches = [
        [(e["userId"].encode(), orjson.dumps(e)) for e in orjson.loads(body)["batch"]]
        for body in make_bodies(int(seconds * 400), 100, gz=False)
    ]
    next_batch = iter(batches)
    events = 0
    try:
        partitions = sorted(await producer.partitions_for(topic))
        deadline = time.perf_counter() + seconds

        async def sender() -> None:
            nonlocal events
            while time.perf_counter() < deadline and (batch := next(next_batch, None)):
                records = [(partition_for(key, partitions), key, value) for key, value in batch]
                await asyncio.gather(*await send_batched(producer, topic, records))
                events += len(batch)

        began = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    finally:
        await producer.stop()
    return {"events_per_s": round(events / elapsed)}


# --- in-process: the request path without HTTP or a load generator ------------------------


async def asgi_post(app: object, path: str, body: bytes) -> int:
    """One POST straight into the ASGI app; the status it answered."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"authorization", AUTH.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    delivered = asyncio.Event()
    status = 0

    async def receive() -> dict:
        if delivered.is_set():
            await asyncio.Event().wait()  # the body was read; nothing more comes
        delivered.set()
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)  # type: ignore[operator]
    return status


async def handler_cpu(bootstrap: str, requests: int, concurrency: int, batch: int) -> float:
    """CPU µs per accepted event of the app's request path, against the real broker."""
    from baton_ingest.api import create_app
    from baton_ingest.config import IngestSettings

    settings = IngestSettings(
        **{  # type: ignore[arg-type]
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "BATON_TOPIC_PREFIX": f"benchcpu{uuid.uuid4().hex[:6]}.",
            "BATON_ENV": "test",
            "BATON_INGEST_WRITE_KEYS": WRITE_KEY,
            "BATON_INGEST_RATE_LIMIT": "10000000/second",
        }
    )
    app = create_app(settings)
    path = "/v1/batch" if batch > 1 else "/v1/track"
    async with app.router.lifespan_context(app):
        for _ in range(300):  # until the producer is connected
            if await asgi_post(app, path, make_bodies(1, batch, False)[0]) == 200:
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("ingest did not connect to Kafka in 30 s")

        async def drive(bodies: list[bytes]) -> int:
            queue = iter(bodies)

            async def worker() -> int:
                return sum([await asgi_post(app, path, b) == 200 for b in queue])

            return sum(await asyncio.gather(*(worker() for _ in range(concurrency))))

        await drive(make_bodies(max(requests // 4, concurrency), batch, False))  # warm-up
        bodies = make_bodies(requests, batch, False)
        gc.collect()
        started = time.process_time()
        ok = await drive(bodies)
        spent = time.process_time() - started
    return 1e6 * spent / max(ok * batch, 1)


def main_handler_cpu(bootstrap: str) -> None:
    tune_for_throughput()  # the service's collector settings (baton_ingest.main.build_app)
    figures = {}
    for name, requests, concurrency, batch in (("batch100", 600, 4, 100), ("single", 6000, 64, 1)):
        runs = [asyncio.run(handler_cpu(bootstrap, requests, concurrency, batch)) for _ in range(3)]
        figures[f"{name}_handler_cpu_us_per_event"] = round(min(runs), 1)
        print(f"{name:>9}: {' '.join(f'{r:.1f}' for r in runs)} CPU µs/event (best of 3)")
    print_figures(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch-concurrency", type=int, default=16)
    parser.add_argument("--open-connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="BATON_INGEST_WORKERS")
    parser.add_argument(
        "--batch-rate",
        type=float,
        default=20_000,
        help="events/s for the open-loop batch scenario (fixed schedule, latency from "
        "each scheduled start)",
    )
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=("batch100", "batch100_open", "single", "gzip_batch100"),
        help="run only these (default: all)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy samples of the service")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="the default")
    parser.add_argument(
        "--handler-cpu",
        action="store_true",
        help="only measure CPU µs/event of the request path in-process (no HTTP)",
    )
    args = parser.parse_args()
    if args.handler_cpu:
        with kafka_broker() as bootstrap:
            main_handler_cpu(bootstrap)
        return
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
            results = run_scenarios(args, proc, Path(tmp))
        finally:
            proc.stop()
        bare = asyncio.run(bare_producer(bootstrap, args.seconds, args.batch_concurrency))
        print(f"  bare_producer: {bare['events_per_s']:>7} events/s (same batches, same broker)")
        results["bare_producer"] = bare
        if "batch100" in results:
            ratio = results["batch100"]["events_per_s"] / max(1, bare["events_per_s"])
            results["batch100"]["vs_bare"] = round(ratio, 2)
            print(f"  batch100 / bare producer: {ratio:.2f}")
    print_figures({f"{name}_{k}": v for name, r in results.items() for k, v in r.items()})


if __name__ == "__main__":
    main()
