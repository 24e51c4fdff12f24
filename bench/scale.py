"""A million leads: what a scorer restart, deploy and failover cost, and the SLA monitor
and router at size.

    uv run python bench/scale.py [--leads 1000000] [--store rocksdb://] [--log-level INFO]
                                 [--no-sla] [--no-router] [--sla-clocks N] [--router-owners N]

Scorer: one worker loads ``leads`` leads through ``leads.events`` (one event each,
every tenth a ``Demo Requested``: an SQL with a recycle timer). Then, each time with a
``Demo Requested`` for a new lead produced right after the worker went down:

* SIGKILL and start: restart → ``/healthz`` ready, restart → the new lead's transition;
* the same with the local store deleted (the whole changelog read);
* SIGTERM, wait for the exit, start: SIGTERM → the new transition;
* a second worker joins; both are restarted in turn (SIGTERM, start, ready) while a new
  lead requests a demo every 0.1 s: the longest any waited for its transition
  (``rolling_restart_gap_s``);
* SIGKILL one of the two: kill → a transition for a new lead in every partition (the
  dead worker's partitions included).

Also the worker's RSS after the load and after recovery, and the ``leads`` changelog's
records per lead. Then :func:`_scale_sla.measure_sla` (1,000,000 open clocks) and
:func:`_scale_router.measure_router` (5,000 reps, 200 pools, 100,000 account owners at
200 SQLs/s). Kafka and PostgreSQL
from ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` when set, else the local dev stack.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import print_figures
from scorer import scored

from baton_devstack.ports import free_port
from baton_devstack.services import SERVICES, ServiceProcess
from baton_scorer.app import internal_topics
from baton_scorer.config import ScorerSettings
from baton_shared.kafka import durable_producer, ensure_topics
from baton_shared.schemas import LeadEvent

SCORER = next(s for s in SERVICES if s.name == "scorer")


def event(lead_id: str, demo: bool, run: str, n: int) -> bytes:
    now = datetime.now(UTC)
    name, category = ("Demo Requested", None) if demo else (None, "pricing")
    return LeadEvent(
        event_id=f"{run}-{n}",
        lead_id=lead_id,
        type="track" if demo else "page",
        name=name,
        page_category=category,
        occurred_at=now,
        received_at=now,
        source="bench",
    ).to_bytes()


async def load(bootstrap: str, topic: str, leads: int, run: str) -> None:
    template = orjson.loads(event("LEAD", False, run, 0))
    demo = orjson.loads(event("LEAD", True, run, 0))
    producer = durable_producer(bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        pending = []
        for i in range(leads):
            body = dict(demo if i % 10 == 0 else template, lead_id=f"lead-{i}")
            body["event_id"] = f"{run}-{i}"
            key = body["lead_id"].encode()
            pending.append(await producer.send(topic, orjson.dumps(body), key=key))
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


class Transitions:
    """When each lead's first transition after now arrives on ``leads.transitions``."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="latest"
        )
        self.seen: dict[str, float] = {}

    async def start(self) -> None:
        await self.consumer.start()
        await self.consumer.seek_to_end()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for record in self.consumer:
            self.seen.setdefault(record.key.decode(), time.monotonic())

    async def wait(self, leads: list[str], timeout: float) -> float:
        """When the last of ``leads`` had its transition."""
        deadline = time.monotonic() + timeout
        while not all(lead in self.seen for lead in leads):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no transition for {set(leads) - set(self.seen)}")
            await asyncio.sleep(0.02)
        return max(self.seen[lead] for lead in leads)

    async def stop(self) -> None:
        self.task.cancel()
        await self.consumer.stop()


def rss_mb(pid: int | None) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


STANDBY_LAG = re.compile(r"^baton_scorer_standby_lag_records ([0-9.e+]+)$", re.M)


async def standbys_warm(url: str, timeout: float = 1800) -> None:
    """Wait until the worker at ``url`` has read its standby copies to the end."""
    deadline = time.monotonic() + timeout
    zeros = 0
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            await asyncio.sleep(1)
            found = STANDBY_LAG.search((await http.get(f"{url}/metrics")).text)
            zeros = zeros + 1 if found and float(found.group(1)) == 0 else 0
            if zeros == 3:  # the gauge is set once a second, 0 before the first time
                return
    raise TimeoutError(f"standby copies of {url} still behind after {timeout} s")


def disk_mb(path: Path) -> float:
    """Bytes under ``path`` (the workers' RocksDB stores), in MB."""
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


async def ready(url: str, timeout: float = 600) -> float:
    """When ``url``'s ``/healthz`` first answered 200."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return time.monotonic()
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} not ready in {timeout} s")


class Bench:
    def __init__(self, bootstrap: str, args: argparse.Namespace) -> None:
        self.bootstrap, self.args = bootstrap, args
        self.run = f"scale{uuid.uuid4().hex[:6]}"
        self.workdir = Path(tempfile.mkdtemp(prefix="baton-bench-scale-"))
        self.env = {
            "BATON_ENV": "test",
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "BATON_TOPIC_PREFIX": f"{self.run}.",
            "BATON_SCORER_DATA_DIR": str(self.workdir / "scorer"),
            "BATON_SCORER_STORE": args.store,
            "BATON_LOG_LEVEL": args.log_level,
            "BATON_LOG_FORMAT": "console",
        }
        self.settings = ScorerSettings.model_validate(self.env)
        self.started = 0
        self.probes = 0

    def worker(self) -> ServiceProcess:
        self.started += 1
        log = self.workdir / f"scorer-{self.started}.log"
        proc = ServiceProcess(SCORER, self.env, log, free_port())
        proc.start()
        return proc

    async def probe(self, count: int = 1) -> list[str]:
        """``Demo Requested`` for ``count`` new leads."""
        leads = []
        for _ in range(count):
            self.probes += 1
            lead = f"probe-{self.probes}"
            value = event(lead, True, f"{self.run}p", self.probes)
            await self.producer.send_and_wait(self.settings.topics.events, value, lead.encode())
            leads.append(lead)
        return leads

    async def changelog_records(self) -> int:
        topic = f"{self.settings.topics.group('baton-scorer')}-leads-changelog"
        producer = durable_producer(self.bootstrap)
        await producer.start()
        try:
            tps = [TopicPartition(topic, p) for p in await producer.partitions_for(topic)]
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            return sum(ends[tp] - starts[tp] for tp in tps)
        finally:
            await consumer.stop()

    async def measure(self) -> dict[str, Any]:
        settings, leads = self.settings, self.args.leads
        names = [*settings.topics.all(), *internal_topics(settings)]
        await ensure_topics(self.bootstrap, names, settings.topic_partitions)
        started = time.monotonic()
        print(f"producing {leads:,} leads' events ...", flush=True)
        await load(self.bootstrap, settings.topics.events, leads, self.run)
        watch = Transitions(self.bootstrap, settings.topics.transitions)
        await watch.start()
        self.producer = durable_producer(self.bootstrap, linger_ms=0)
        await self.producer.start()
        first = self.worker()
        try:
            await ready(first.url)
            count = 0
            while count < leads:
                await asyncio.sleep(0.5)
                count = await asyncio.to_thread(scored, first.url)
            load_s = time.monotonic() - started
            print(f"loaded: {count:,} events scored in {load_s:.0f} s", flush=True)
            figures: dict[str, Any] = {"leads": leads, "store": self.args.store}
            figures["changelog_records"] = await self.changelog_records()
            figures["changelog_records_per_lead"] = round(figures["changelog_records"] / leads, 2)
            figures["rss_before_kill_mb"] = rss_mb(first.pid)

            t0 = time.monotonic()
            first.kill()
            first = self.worker()
            probe = await self.probe()
            figures["restart_to_healthz_s"] = round(await ready(first.url) - t0, 2)
            transition_at = await watch.wait(probe, 600)
            figures["restart_to_first_transition_s"] = round(transition_at - t0, 2)
            figures["rss_mb"] = figures["rss_after_recovery_mb"] = rss_mb(first.pid)
            figures["store_disk_mb"] = disk_mb(self.workdir / "scorer")

            t0 = time.monotonic()
            first.kill()
            shutil.rmtree(self.workdir / "scorer")
            first = self.worker()
            probe = await self.probe()
            figures["restart_without_store_to_healthz_s"] = round(await ready(first.url) - t0, 2)
            transition_at = await watch.wait(probe, 1800)
            figures["restart_without_store_to_first_transition_s"] = round(transition_at - t0, 2)

            t0 = time.monotonic()
            await asyncio.to_thread(first.stop)
            figures["sigterm_stop_s"] = round(time.monotonic() - t0, 2)
            first = self.worker()
            probe = await self.probe()
            figures["one_worker_sigterm_healthz_s"] = round(await ready(first.url) - t0, 2)
            figures["one_worker_sigterm_restart_s"] = round(await watch.wait(probe, 600) - t0, 2)

            second = self.worker()
            try:
                await ready(second.url)
                await watch.wait(await self.probe(6), 600)  # both serving
                await standbys_warm(second.url)
                async with Prober(self, watch) as prober:
                    await asyncio.sleep(2)
                    for n in (0, 1):  # a rolling deploy of two workers
                        prober.mark(f"SIGTERM worker {n}")
                        await asyncio.to_thread((first, second)[n].stop)
                        prober.mark(f"worker {n} exited")
                        new = self.worker()
                        await ready(new.url)
                        prober.mark(f"worker {n} ready again")
                        first, second = (new, second) if n == 0 else (first, new)
                    await asyncio.sleep(2)
                print(prober.timeline(), flush=True)
                figures["rolling_restart_gap_s"] = prober.worst
                figures["rolling_restart_probes"] = prober.sent

                t0 = time.monotonic()
                first.kill()
                probes = await self.probe(3 * settings.topic_partitions)
                figures["failover_to_first_transition_s"] = round(
                    await watch.wait(probes, 600) - t0, 2
                )
                figures["rss_survivor_mb"] = rss_mb(second.pid)
            finally:
                second.stop()
        finally:
            first.stop()
            await watch.stop()
            await self.producer.stop()
        return figures


class Prober:
    """A ``Demo Requested`` for a new lead every ``interval`` seconds (the leads' keys
    spread over every partition) while in use; ``worst``: the longest any waited for
    its transition."""

    def __init__(self, bench: Bench, watch: Transitions, interval: float = 0.1) -> None:
        self.bench, self.watch, self.interval = bench, watch, interval
        self.sent_at: dict[str, float] = {}
        self.worst = 0.0
        self.sent = 0
        self.marks: list[tuple[float, str]] = []

    def mark(self, what: str) -> None:
        self.marks.append((time.monotonic(), what))

    def timeline(self) -> str:
        """The marks and, between them, the longest wait of a lead sent in each span."""
        seen, start = self.watch.seen, self.marks[0][0] if self.marks else 0.0
        lines = []
        bounds = [*self.marks, (float("inf"), "end")]
        for (at, what), (until, _) in itertools.pairwise(bounds):
            waits = [seen[lead] - t for lead, t in self.sent_at.items() if at <= t < until]
            worst = f"{max(waits):.2f} s" if waits else "-"
            lines.append(f"  +{at - start:6.2f} s {what}: longest wait after it {worst}")
        return "\n".join(lines)

    async def __aenter__(self) -> Prober:
        self.task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            (lead,) = await self.bench.probe()
            self.sent_at[lead] = time.monotonic()
            await asyncio.sleep(self.interval)

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()
        leads = list(self.sent_at)
        await self.watch.wait(leads, 600)
        seen = self.watch.seen
        self.sent = len(leads)
        self.worst = round(max(seen[lead] - self.sent_at[lead] for lead in leads), 2)


def report_scorer(f: dict[str, Any]) -> None:
    print(
        f"{f['leads']:,} leads ({f['store']}), {f['changelog_records']:,} changelog records "
        f"({f['changelog_records_per_lead']} per lead)\n"
        f"  SIGKILL, start: healthz {f['restart_to_healthz_s']} s, "
        f"first new transition {f['restart_to_first_transition_s']} s\n"
        f"  SIGKILL, local store deleted, start: healthz "
        f"{f['restart_without_store_to_healthz_s']} s, first new transition "
        f"{f['restart_without_store_to_first_transition_s']} s\n"
        f"  one worker, SIGTERM ({f['sigterm_stop_s']} s to exit), start: first new "
        f"transition {f['one_worker_sigterm_restart_s']} s\n"
        f"  two workers restarted in turn (SIGTERM, start, ready): longest wait of "
        f"{f['rolling_restart_probes']} new leads for their transition "
        f"{f['rolling_restart_gap_s']} s\n"
        f"  two workers, one SIGKILLed: every partition's new transition "
        f"{f['failover_to_first_transition_s']} s\n"
        f"  local store on disk {f['store_disk_mb']} MB\n"
        f"  RSS {f['rss_before_kill_mb']} MB after the load, {f['rss_after_recovery_mb']} MB "
        f"after recovery, {f['rss_survivor_mb']} MB on the failover's survivor",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--store", default="rocksdb://", help="BATON_SCORER_STORE")
    parser.add_argument("--log-level", default="WARNING", help="the workers' (logs in a tmp dir)")
    parser.add_argument("--no-sla", action="store_true")
    parser.add_argument("--no-router", action="store_true")
    parser.add_argument("--sla-clocks", type=int, default=1_000_000)
    parser.add_argument("--router-owners", type=int, default=100_000)
    args = parser.parse_args()
    if not (os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("DATABASE_URL")):
        from baton_devstack.infra import default_state_dir, start_infra

        os.environ.update(start_infra(default_state_dir()))
    figures = asyncio.run(Bench(os.environ["KAFKA_BOOTSTRAP_SERVERS"], args).measure())
    report_scorer(figures)
    figures |= {"sla_clocks": None, "sla_lateness_p99_s": None, "router_decision_p99_ms": None}
    if not args.no_sla:
        from _scale_sla import measure_sla

        figures |= asyncio.run(measure_sla(args.sla_clocks))
    if not args.no_router:
        from _scale_router import measure_router

        figures |= asyncio.run(measure_router(owners=args.router_owners))
    print_figures(figures)


if __name__ == "__main__":
    main()
