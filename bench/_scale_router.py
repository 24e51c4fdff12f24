"""The router deciding with thousands of reps, hundreds of pools and a hundred thousand
account owners: decision latency at a steady rate, and rows read per routed batch.

    uv run python bench/_scale_router.py [--reps 5000] [--pools 200] [--owners 100000]
                                         [--rate 200] [--seconds 20]

:func:`measure_router` starts one router process (``baton_router.main``) on a fresh
database and topic prefix with ``bench/router.py``'s webhook receiver, bulk-loads the
team in SQL (``reps`` reps with working hours in a few time zones, ``pools`` pools of
equal size and one routing rule each on ``traits.team``, the first pool the express
one, ``owners`` account domains owned by reps), then produces SQL transitions at
``rate`` per second for ``seconds``: one in four from an owned account, one in four
express, each with a ``team`` trait that a rule matches. Per lead: transition produced →
signed webhook received (``router_decision_p99_ms``: the routing decision as the rep
sees it, so it bounds the decision) and produced → the decision's ``assigned_at``; the
router's stage histograms; and, from PostgreSQL's table statistics, the rows read from
the team's tables (reps, pools, members, rules, accounts) per routed batch.

Kafka and PostgreSQL from ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` when set, else
the local dev stack. ``bench/scale.py`` calls :func:`measure_router`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent))

import router as router_bench
from _harness import infra_env, print_figures, stage_breakdown
from router import (
    ADMIN,
    Receiver,
    cpu_seconds,
    histograms,
    percentile,
    produce,
    router_process,
    wait_all,
)
from sla import drop_database

from baton_shared.schemas import Transition

TEAM_TABLES = ("reps", "pools", "pool_members", "routing_rules", "accounts")
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")
ALL_WEEK = (
    '{"mon":["00:00-24:00"],"tue":["00:00-24:00"],"wed":["00:00-24:00"],'
    '"thu":["00:00-24:00"],"fri":["00:00-24:00"],"sat":["00:00-24:00"],"sun":["00:00-24:00"]}'
)

SEED = [
    # Reps: every fourth with all-week working hours in one of four zones; the secret is
    # the one the API sealed for the first rep ($2), the webhook the receiver ($3).
    """
    INSERT INTO router.reps (id, name, email, webhook_url, webhook_secret, status,
      timezone, working_hours, out_of_office, weight, skills, open_leads)
    SELECT gen_random_uuid(), 'Rep ' || g, 'rep' || g || '@example.com', $3 || '/rep' || g,
      $2, 'online', ($4::text[])[1 + g % 4],
      CASE WHEN g % 4 = 0 THEN CAST($5 AS jsonb) END, '[]', 1 + g % 3, '{}', 0
    FROM generate_series(2, $1) AS g
    """,
    """
    INSERT INTO router.pools (id, name, strategy, express, escalation, max_reassignments)
    SELECT gen_random_uuid(), 'pool-' || g,
      (ARRAY['round_robin', 'weighted', 'least_loaded'])[1 + g % 3], g = 0, 'next_rep', 2
    FROM generate_series(0, $1 - 1) AS g
    """,
    """
    INSERT INTO router.pool_members (pool_id, rep_id, wrr_current)
    SELECT p.id, r.id, 0
    FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM router.reps) AS r
    JOIN (SELECT id, row_number() OVER (ORDER BY name COLLATE "C") - 1 AS n
          FROM router.pools) AS p ON p.n = r.n % $1
    """,
    """
    INSERT INTO router.routing_rules (id, position, name, conditions, pool_id, enabled)
    SELECT gen_random_uuid(), CAST(substr(name, 6) AS int), 'team ' || substr(name, 6),
      jsonb_build_array(jsonb_build_object(
        'field', 'traits.team', 'op', 'eq', 'value', 't' || substr(name, 6))), id, true
    FROM router.pools
    """,
    """
    INSERT INTO router.accounts (domain, rep_id)
    SELECT 'acct' || g || '.example', r.id
    FROM generate_series(0, $1 - 1) AS g
    JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM router.reps) AS r
      ON r.n = g % $2
    """,
]

ROWS_READ = """
SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0)
FROM pg_stat_user_tables WHERE schemaname = 'router' AND relname = ANY($1::text[])
"""


async def seed_team(
    dsn: str,
    http: httpx.AsyncClient,
    router_url: str,
    receiver_url: str,
    reps: int,
    pools: int,
    owners: int,
) -> float:
    """The team, bulk-loaded (the first rep through the API, for a sealed secret); the
    seconds it took."""
    started = time.monotonic()
    response = await http.post(
        f"{router_url}/v1/reps",
        headers={"Authorization": f"Bearer {ADMIN}"},
        json={"name": "Rep 1", "email": "rep1@example.com", "webhook_url": f"{receiver_url}/rep1"},
    )
    response.raise_for_status()
    conn = await asyncpg.connect(dsn)
    try:
        secret = await conn.fetchval("SELECT webhook_secret FROM router.reps")
        async with conn.transaction():
            await conn.execute(SEED[0], reps, secret, receiver_url, list(ZONES), ALL_WEEK)
            await conn.execute(SEED[1], pools)
            await conn.execute(SEED[2], pools)
            await conn.execute(SEED[3])
            await conn.execute(SEED[4], owners, reps)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.monotonic() - started


def transition(run: str, n: int, pools: int, owners: int) -> Transition:
    """``bench/router.py``'s n-th SQL (every fourth express) with a rule's team, and
    every fourth (others) from an owned account."""
    email = f"lead{n}@acct{(n * 7919) % owners}.example" if n % 4 == 1 else None
    return router_bench.transition(run, n).model_copy(
        update={"email": email, "traits": {"team": f"t{(n * 31) % pools}", "country": "de"}}
    )


async def rows_read(dsn: str) -> int:
    """Rows read from the team's tables so far (table statistics; flushed first)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(await conn.fetchval(ROWS_READ, list(TEAM_TABLES)))
    finally:
        await conn.close()


async def measure_router(
    reps: int = 5000,
    pools: int = 200,
    owners: int = 100_000,
    rate: float = 200,
    seconds: float = 20,
) -> dict:
    """Decision latency at ``rate`` SQLs/s with the team at the given size."""
    infra = infra_env()
    run = f"scale{uuid.uuid4().hex[:6]}"
    router, dsn = await router_process(infra, run)
    receiver = Receiver()
    router.start()
    try:
        router.wait_ready()
        async with httpx.AsyncClient(timeout=30) as http:
            print(
                f"loading {reps:,} reps, {pools} pools, {owners:,} owned accounts ...", flush=True
            )
            seed_seconds = await seed_team(dsn, http, router.url, receiver.url, reps, pools, owners)
            producer = AIOKafkaProducer(
                bootstrap_servers=infra["KAFKA_BOOTSTRAP_SERVERS"], acks="all", linger_ms=1
            )
            await producer.start()
            topic = f"{run}.leads.transitions"
            try:
                warm = [transition(f"{run}w", n, pools, owners) for n in range(50)]
                await produce(producer, topic, warm, 50)
                await wait_all(receiver, {t.transition_id for t in warm}, 120)
                steady = [
                    transition(f"{run}s", n, pools, owners) for n in range(int(rate * seconds))
                ]
                print(f"steady: {len(steady)} SQLs at {rate:.0f}/s ...", flush=True)
                stages_before = await histograms(http, router.url)
                read_before = await rows_read(dsn)
                cpu_before = cpu_seconds(router.pid)
                sent = await produce(producer, topic, steady, rate)
                await wait_all(receiver, set(sent), 120)
                cpu_ms_per_sql = (cpu_seconds(router.pid) - cpu_before) / len(steady) * 1000
                stages = stage_breakdown(stages_before, await histograms(http, router.url))
                await asyncio.sleep(1.5)  # table statistics are flushed about once a second
                read = await rows_read(dsn) - read_before
            finally:
                await producer.stop()
    finally:
        router.stop()
        receiver.server.shutdown()
        await drop_database(infra["DATABASE_URL"], run)

    latencies = [(receiver.arrived[i] - sent[i]) * 1000 for i in sent if i in receiver.arrived]
    to_decision = [
        (receiver.assigned_at[i] - sent[i]) * 1000 for i in sent if i in receiver.assigned_at
    ]
    batches = stages["route_tx"]["count"] or 1
    figures = {
        "router_reps": reps,
        "router_pools": pools,
        "router_owners": owners,
        "router_rate_per_s": rate,
        "router_sqls": len(sent),
        "router_delivered": len(latencies),
        "router_decision_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "router_decision_p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "router_to_assigned_at_p99_ms": (
            round(percentile(to_decision, 0.99), 1) if to_decision else None
        ),
        "router_route_tx_p99_le_ms": stages["route_tx"]["p99_le_ms"],
        "router_batches": batches,
        "router_team_rows_read_per_batch": round(read / batches),
        "router_cpu_ms_per_sql": round(cpu_ms_per_sql, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "router_seed_seconds": round(seed_seconds, 1),
    }
    print(
        f"{reps:,} reps, {pools} pools, {owners:,} owners at {rate:.0f} SQLs/s: "
        f"{len(latencies)}/{len(sent)} delivered, produced → webhook p50 "
        f"{figures['router_decision_p50_ms']} ms, p99 {figures['router_decision_p99_ms']} ms; "
        f"routing transaction p99 ≤ {figures['router_route_tx_p99_le_ms']} ms; "
        f"{figures['router_team_rows_read_per_batch']:,} team rows read per batch "
        f"({batches:.0f} batches); router CPU {figures['router_cpu_ms_per_sql']} ms per SQL",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5000)
    parser.add_argument("--pools", type=int, default=200)
    parser.add_argument("--owners", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    if not 1 <= args.pools <= args.reps or args.owners < 1 or not 0 < args.rate <= 2000:
        sys.exit("1 ≤ --pools ≤ --reps, --owners ≥ 1, 0 < --rate ≤ 2000")
    figures = asyncio.run(
        measure_router(args.reps, args.pools, args.owners, args.rate, args.seconds)
    )
    print_figures(figures)


if __name__ == "__main__":
    main()
