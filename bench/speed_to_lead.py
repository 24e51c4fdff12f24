"""Speed to lead under load: a demo request's time to the rep's verified webhook while
the website keeps sending.

    uv run python bench/speed_to_lead.py [--rate 5000] [--seconds 30] [--demos 2]
                                         [--reps 20] [--leads 20000] [--use-running]

Starts the whole stack as separate processes on a local Kafka and PostgreSQL (or, with
``--use-running``, uses the one ``make up`` started: ``BATON_*_URL`` or the default
ports), creates ``--reps`` reps whose webhooks go to a local receiver that verifies
every signature with ``standardwebhooks``, then for ``--seconds``:

* background tracking traffic through ingest's ``/v1/batch`` at ``--rate`` events/s:
  page views and email engagement over ``--leads`` leads, a few of them crossing the
  thresholds so the router has bulk SQLs to assign too;
* ``--demos`` demo requests a second, each from a new lead, timed from the POST to the
  verified webhook that assigns it.

Prints the demo latency (p50/p99/max); each demo's own path in four legs (ingest's
answer, answer → the scorer's transition emitted, emitted → the router's decision,
decision → verified webhook: p50/p99 from the transition on ``leads.transitions`` and the
webhook's ``assigned_at``); the background's achieved rate, ingest p99 and 503s; the
per-stage breakdown from the services' own histograms (ingest request, scorer pick-up
and batch per lane, router consume lag, route batch, dispatch wait, webhook request,
transition to webhook); the CPU each service used (own stack only); and ``host_mips``;
then one JSON line. Profilers are off.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from standardwebhooks import Webhook

sys.path.insert(0, str(Path(__file__).parent))
from _harness import QuietServer, percentile, print_figures, stage_breakdown

from baton_devstack import infra
from baton_devstack.ports import free_port
from baton_devstack.services import SERVICES, start_services, stop_services

# The bench's own stack takes these; with --use-running, the environment's (make up's
# local defaults unless set).
ADMIN = os.environ.get("BATON_ADMIN_TOKEN", "local-admin-token")
WRITE_KEY = os.environ.get("BATON_INGEST_WRITE_KEYS", "local-write-key").split(",")[0]
PAGES = ["/blog/a", "/blog/b", "/docs/start", "/product/tour", "/pricing", "/careers"]
EMAILS = ["Email Opened", "Email Clicked"]
# name -> (service, histogram): the stages of the path, from the services' own metrics.
STAGES = {
    "ingest_request": ("ingest", "baton_ingest_request_seconds"),
    "scorer_pickup_express": ("scorer", 'baton_scorer_pickup_seconds_bucket{lane="express"'),
    "scorer_wait_express": ("scorer", 'baton_scorer_lane_wait_seconds_bucket{lane="express"'),
    "scorer_batch_express": ("scorer", 'baton_scorer_batch_seconds_bucket{lane="express"'),
    "scorer_pickup_bulk": ("scorer", 'baton_scorer_pickup_seconds_bucket{lane="bulk"'),
    "scorer_batch_bulk": ("scorer", 'baton_scorer_batch_seconds_bucket{lane="bulk"'),
    "router_consume_lag": ("router", "baton_router_consume_lag_seconds"),
    "router_route_batch": ("router", "baton_router_route_batch_seconds"),
    "router_dispatch_wait": ("router", "baton_router_dispatch_wait_seconds"),
    "router_webhook_request": ("router", "baton_router_webhook_request_seconds"),
    "router_transition_to_webhook": ("router", "baton_router_transition_to_webhook_seconds"),
}


class VerifyingReceiver:
    """Every rep's webhook endpoint: verifies the Standard Webhooks signature with the
    rep's secret and records, per demo lead, when its assignment arrived."""

    def __init__(self) -> None:
        self.secrets: dict[str, Webhook] = {}
        self.arrived: dict[str, float] = {}
        self.assigned_at: dict[str, float] = {}  # the router's decision, from the webhook
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                rep = self.path.rsplit("/", 1)[-1]
                try:
                    payload = receiver.secrets[rep].verify(body, dict(self.headers))
                except Exception:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    payload = None
                at = time.time()
                if payload and payload.get("type") == "lead.assigned":
                    data = payload["data"]
                    decided = datetime.fromisoformat(data["assigned_at"]).timestamp()
                    with receiver.lock:
                        receiver.arrived.setdefault(data["lead_id"], at)
                        receiver.assigned_at.setdefault(data["lead_id"], decided)
                self.send_response(200 if payload else 400)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def background_batch(rnd: random.Random, n: int, leads: int, run: str) -> list[dict[str, Any]]:
    """``n`` tracking calls: page views and email engagement over ``leads`` leads."""
    calls: list[dict[str, Any]] = []
    for _ in range(n):
        lead = f"bg-{run}-{rnd.randrange(leads)}"
        if rnd.random() < 0.7:
            call: dict[str, Any] = {"type": "page", "properties": {"path": rnd.choice(PAGES)}}
        else:
            call = {"type": "track", "event": rnd.choice(EMAILS)}
        calls.append({**call, "userId": lead, "messageId": uuid.uuid4().hex})
    return calls


async def background(
    http: httpx.AsyncClient, ingest: str, rate: int, seconds: float, leads: int, run: str
) -> tuple[int, list[float], int]:
    """Post ``rate`` events/s in batches every 20 ms for ``seconds``; the events sent and
    each request's latency (s). A batch that is not accepted is counted as not sent."""
    rnd, tick, sent, latencies = random.Random(7), 0.02, 0, []
    refused = 0
    per_tick = max(1, round(rate * tick))
    in_flight: set[asyncio.Task[None]] = set()

    async def post(calls: list[dict[str, Any]]) -> None:
        nonlocal sent, refused
        started = time.perf_counter()
        answer = await http.post(f"{ingest}/v1/batch", auth=(WRITE_KEY, ""), json={"batch": calls})
        latencies.append(time.perf_counter() - started)
        if answer.status_code < 300:
            sent += len(calls)
        refused += answer.status_code == 503

    start = time.perf_counter()
    for i in range(int(seconds / tick)):
        delay = start + i * tick - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) < 64:  # bounded: a slow ingest lowers the achieved rate
            task = asyncio.create_task(post(background_batch(rnd, per_tick, leads, run)))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
    await asyncio.gather(*in_flight)
    return sent, latencies, refused


async def demos(
    http: httpx.AsyncClient,
    ingest: str,
    per_second: float,
    seconds: float,
    run: str,
    acked: dict[str, float] | None = None,
) -> dict[str, float]:
    """A demo request from a new lead every 1/``per_second`` s; when each was posted
    (and, into ``acked``, when ingest answered)."""
    posted: dict[str, float] = {}
    for i in range(int(per_second * seconds)):
        lead = f"demo-{run}-{i}"
        call = {"type": "track", "event": "Demo Requested", "userId": lead,
                "messageId": uuid.uuid4().hex, "traits": {"email": f"{lead}@example.com"}}
        posted[lead] = time.time()
        answer = await http.post(f"{ingest}/v1/track", auth=(WRITE_KEY, ""), json=call)
        answer.raise_for_status()
        if acked is not None:
            acked[lead] = time.time()
        await asyncio.sleep(1 / per_second)
    return posted


async def scrape(http: httpx.AsyncClient, urls: dict[str, str]) -> dict[str, dict[float, float]]:
    """Each stage histogram's cumulative bucket counts by upper bound."""
    out: dict[str, dict[float, float]] = {stage: {} for stage in STAGES}
    texts = {name: (await http.get(f"{url}/metrics")).text for name, url in urls.items()}
    for stage, (service, metric) in STAGES.items():
        prefix = metric if "{" in metric else f"{metric}_bucket{{"
        for line in texts.get(service, "").splitlines():
            if line.startswith(prefix):
                le = float(line.split('le="', 1)[1].split('"', 1)[0])
                out[stage][le] = out[stage].get(le, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


class TransitionWatch:
    """Reads ``leads.transitions`` from its end: when the scorer emitted each demo
    lead's transition (``emitted_at``)."""

    def __init__(self, kafka: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka, auto_offset_reset="latest")
        self.emitted: dict[str, float] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        await self.consumer.seek_to_end()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for record in self.consumer:
            if b'"demo-' in record.value:
                t = orjson.loads(record.value)
                if t["lead_id"].startswith("demo-") and t.get("emitted_at"):
                    at = datetime.fromisoformat(t["emitted_at"]).timestamp()
                    self.emitted.setdefault(t["lead_id"], at)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.consumer.stop()


def legs(
    posted: dict[str, float], acked: dict[str, float], watch: TransitionWatch,
    receiver: VerifyingReceiver,
) -> dict[str, dict[str, float]]:
    """Each demo's path in four legs (ms, p50 and p99), from its own timestamps."""
    stamps = {
        lead: (at, acked.get(lead), watch.emitted.get(lead), receiver.assigned_at.get(lead),
               receiver.arrived.get(lead))
        for lead, at in posted.items()
    }  # fmt: skip
    names = ["ingest_answer", "to_scorer_emit", "to_router_decision", "to_webhook"]
    out: dict[str, dict[str, float]] = {}
    for i, name in enumerate(names):
        gaps = [(t[i + 1] - t[i]) * 1000 for t in stamps.values() if None not in t[i : i + 2]]
        out[name] = {"p50_ms": round(percentile(gaps, 0.5), 1),
                     "p99_ms": round(percentile(gaps, 0.99), 1), "n": len(gaps)}  # fmt: skip
    return out


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """user + system CPU seconds each process used so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = (int(fields[11]) + int(fields[12])) / tick
    return out


async def measure(
    args: argparse.Namespace, urls: dict[str, str], kafka: str, prefix: str,
    pids: dict[str, int] | None = None,
) -> dict[str, Any]:
    receiver = VerifyingReceiver()
    run = uuid.uuid4().hex[:6]
    admin = {"Authorization": f"Bearer {ADMIN}"}
    watch = TransitionWatch(kafka, f"{prefix}leads.transitions")
    await watch.start()
    acked: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        for i in range(args.reps):
            rep = await http.post(f"{urls['router']}/v1/reps", headers=admin, json={
                "name": f"Rep {i}", "email": f"rep{i}-{run}@example.com", "capacity": 10_000,
                "webhook_url": f"{receiver.url}/{i}"})
            rep.raise_for_status()
            receiver.secrets[str(i)] = Webhook(rep.json()["webhook_secret"])
        warm = await demos(http, urls["ingest"], 5, 1, f"{run}w")  # the path is warm
        await wait_for(receiver, set(warm), 60)
        before, cpu_before = await scrape(http, urls), cpu_seconds(pids or {})
        (sent, ingest_latencies, refused), posted = await asyncio.gather(
            background(http, urls["ingest"], args.rate, args.seconds, args.leads, run),
            demos(http, urls["ingest"], args.demos, args.seconds, run, acked),
        )
        cpu_after = cpu_seconds(pids or {})
        await wait_for(receiver, set(posted), 60)
        after = await scrape(http, urls)
    await watch.stop()
    latencies = [(receiver.arrived[lead] - at) * 1000 for lead, at in posted.items()]
    return {
        "demo_to_webhook_p50_ms": round(percentile(latencies, 0.5), 1),
        "demo_to_webhook_p99_ms": round(percentile(latencies, 0.99), 1),
        "demo_to_webhook_max_ms": round(max(latencies), 1),
        "demos": len(latencies),
        "demo_legs": legs(posted, acked, watch, receiver),
        "background_rate_target": args.rate,
        "background_rate_achieved": round(sent / args.seconds),
        "ingest_batch_p99_ms": round(percentile(ingest_latencies, 0.99) * 1000, 1),
        "ingest_batch_503s": refused,
        "bad_signatures": receiver.bad_signatures,
        "stages": stage_breakdown(before, after),
        "service_cpu_share": {
            name: round((cpu_after[name] - cpu_before[name]) / args.seconds, 2)
            for name in cpu_after if name in cpu_before
        },
    }


async def wait_for(receiver: VerifyingReceiver, leads: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with receiver.lock:
            if leads <= receiver.arrived.keys():
                return
        await asyncio.sleep(0.05)
    with receiver.lock:
        missing = len(leads - receiver.arrived.keys())
    raise TimeoutError(f"{missing} of {len(leads)} demo requests got no webhook in {timeout} s")


def start_stack(state: Path) -> tuple[dict[str, str], list[Any], dict[str, str]]:
    """Kafka, PostgreSQL and the four services on free ports, with bench credentials."""
    env = {**infra.start_infra(state), "BATON_ENV": "local", "BATON_ADMIN_TOKEN": ADMIN,
           "BATON_INGEST_WRITE_KEYS": WRITE_KEY, "BATON_LOG_LEVEL": "WARNING",
           "BATON_TOPIC_PREFIX": f"stl{uuid.uuid4().hex[:6]}.",
           "BATON_SCORER_DATA_DIR": str(state / "scorer")}
    ports = {spec.name: free_port() for spec in SERVICES}
    services = start_services(env, state / "logs", ports)
    return {proc.spec.name: proc.url for proc in services}, services, env


def report(figures: dict[str, Any]) -> None:
    print(
        f"demo request -> verified webhook: p50 {figures['demo_to_webhook_p50_ms']} ms, "
        f"p99 {figures['demo_to_webhook_p99_ms']} ms, max {figures['demo_to_webhook_max_ms']}"
        f" ms over {figures['demos']} demos; background {figures['background_rate_achieved']}"
        f"/{figures['background_rate_target']} events/s, ingest batch p99 "
        f"{figures['ingest_batch_p99_ms']} ms"
    )
    for leg, row in figures["demo_legs"].items():
        print(f"  demo leg {leg:21} n={row['n']:<8} p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms")
    print(f"  ingest batch 503s: {figures['ingest_batch_503s']}; service CPU (cores):"
          f" {figures['service_cpu_share']}")
    for stage, row in figures["stages"].items():
        print(f"  {stage:30} n={row['count']:<8g} p50<={row['p50_le_ms']} ms"
              f"  p99<={row['p99_le_ms']} ms")
    print_figures(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=5000, help="background events/s")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--demos", type=float, default=2, help="demo requests/s")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--leads", type=int, default=20_000, help="background leads")
    parser.add_argument("--use-running", action="store_true", help="the stack `make up` runs")
    args = parser.parse_args()
    if args.use_running:
        urls = {spec.name: f"http://127.0.0.1:{spec.port}" for spec in SERVICES}
        kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
        report(asyncio.run(measure(args, urls, kafka, os.environ.get("BATON_TOPIC_PREFIX", ""))))
        return
    state = Path(tempfile.mkdtemp(prefix="baton-stl-"))
    urls, services, env = start_stack(state)
    pids = {proc.spec.name: proc.pid for proc in services if proc.pid}
    try:
        kafka, prefix = env["KAFKA_BOOTSTRAP_SERVERS"], env["BATON_TOPIC_PREFIX"]
        figures = asyncio.run(measure(args, urls, kafka, prefix, pids))
    finally:
        stop_services(services)
        infra.stop_infra(state)
    report(figures)  # host_mips measured with the stack stopped


if __name__ == "__main__":
    main()
