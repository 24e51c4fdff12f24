"""The SLA monitor holding a million open clocks: how late do the due ones fire?

    uv run python bench/_scale_sla.py [--clocks 1000000] [--firing 20000] [--spread-seconds 120]
        [--journeys 0]

:func:`measure_sla` opens ``clocks`` clocks in a fresh database (``bench/sla.py``'s
``fresh_run``, removed at the end) with one monitor running: ``clocks - firing`` of
them are bulk-loaded in SQL (copies of one clock the policy planned, their deadlines
hours away, so they sit open in the sweep's index the whole run) and ``firing`` are
opened through ``ClockStore.open_many`` (the consumer's path) with deadlines spread over
``spread_seconds``. Lateness of an event = received on ``leads.sla`` by a separate
consumer process minus due (``bench/sla.py``'s collector), over the firing clocks'
warnings and breaches. Also reports the sweep query's plan (index or not), the size of
the clocks table per clock, and how long the stats loop's open-clock count takes.
``journeys`` puts that many leads in the reporting store, entered over the last four
weeks (in the gauges' window: each refresh of the reporting gauges, once a minute,
reads and reports them all while the clocks fire), and reports one refresh's time.

Needs ``KAFKA_BOOTSTRAP_SERVERS`` and ``DATABASE_URL``; run alone, it starts the local
dev stack (``.devstack``) when they are not set. ``bench/scale.py`` calls
:func:`measure_sla`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import infra_env, print_figures
from sla import (
    SEED_BATCH,
    CollectorProcess,
    assignment,
    due_query_plan,
    fresh_run,
    no_publish,
    percentile,
)

from baton_shared.database import make_sessionmaker
from baton_sla_monitor.clocks import ClockStore
from baton_sla_monitor.service import SlaService

LOAD_CHUNK = 200_000
IDLE_AFTER = timedelta(hours=2)  # the bulk-loaded clocks' first warning, at the earliest
PAST = timedelta(hours=23)  # ... and their starts, spread over the stats loop's 24 hours

# Copies of the template clock ``:tid`` (ids ``:first`` to ``:last``): long clocks that
# started in the last day and are due (warnings, deadline) ``d`` after the template.
_COPY = text(
    """
    INSERT INTO sla.clocks (id, measure, transition_id, assignment_id, lead_id, rep_id,
      team, stage, express, policy_version, calendar, window_seconds, qualified_at,
      started_at, deadline_at, warn_ats, warn_fractions, warnings_sent, next_fire_at,
      status, system_delay_seconds, assign_target_seconds, attempts_required, attempts_made)
    SELECT 'idle-' || g, t.measure, 'idle-t-' || g, 'idle-a-' || g, 'idle-lead-' || g,
      'rep-' || (g % 5000), t.team, t.stage, t.express, t.policy_version, t.calendar,
      t.window_seconds, now() - x.ago, now() - x.ago, t.deadline_at + x.d,
      ARRAY(SELECT w + x.d FROM unnest(t.warn_ats) AS w), t.warn_fractions, 0,
      t.next_fire_at + x.d, 'open', t.system_delay_seconds, t.assign_target_seconds,
      t.attempts_required, t.attempts_made
    FROM sla.clocks AS t, generate_series(CAST(:first AS int), CAST(:last AS int)) AS g,
      LATERAL (SELECT make_interval(secs => g * :step),
                      make_interval(secs => g * :past_step)) AS x(d, ago)
    WHERE t.id = :tid
    """
)

# Journeys ``:first`` to ``:last`` of the bulk-loaded leads, entered over four weeks: a
# third SQL and contacted, a sixth accepted, a twelfth won.
_JOURNEYS = text(
    """
    INSERT INTO reporting.journeys (lead_id, entered_at, mql_at, sql_at, accepted_at, won_at,
      source, campaign, pool, rep_id, assigned_at, assignment_id, contacted_ats)
    SELECT 'idle-lead-' || g, x.at, x.at,
      CASE WHEN g % 3 = 0 THEN x.at + interval '1 hour' END,
      CASE WHEN g % 6 = 0 THEN x.at + interval '1 day' END,
      CASE WHEN g % 12 = 0 THEN x.at + interval '2 days' END,
      'source-' || (g % 5), 'campaign-' || (g % 50), 'team-' || (g % 4), 'rep-' || (g % 5000),
      x.at + interval '1 hour', 'idle-a-' || g,
      CASE WHEN g % 3 = 0 THEN ARRAY[x.at + interval '2 hours'] ELSE '{}' END
    FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS g,
      LATERAL (SELECT now() - make_interval(secs => g * :step)) AS x(at)
    """
)


async def load_journeys(service: SlaService, count: int) -> float:
    """``count`` journeys in the reporting store; how long one gauge refresh then takes."""
    step = timedelta(days=28).total_seconds() / max(count, 1)
    for first in range(1, count + 1, LOAD_CHUNK):
        last = min(count, first + LOAD_CHUNK - 1)
        async with service.engine.begin() as conn:
            await conn.execute(_JOURNEYS, {"first": first, "last": last, "step": step})
    async with service.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE reporting.journeys"))
    started = time.monotonic()
    await service.reporting.refresh_gauges()
    return time.monotonic() - started


async def bulk_load(service: SlaService, count: int) -> float:
    """``count`` open clocks, started in the last day and due hours from now, in a few
    multi-row statements; the seconds it took. A template clock is planned by the
    policy and stored first."""
    started = time.monotonic()
    template = ClockStore(make_sessionmaker(service.engine), service.policy, no_publish)
    (clock,) = await template.open_many([assignment(-1, datetime.now(UTC) + IDLE_AFTER)])
    step = 3600 / max(count, 1)  # deadlines spread over an hour, from IDLE_AFTER on
    for first in range(1, count + 1, LOAD_CHUNK):
        last = min(count, first + LOAD_CHUNK - 1)
        async with service.engine.begin() as conn:
            await conn.execute(
                _COPY,
                {
                    "first": first,
                    "last": last,
                    "past_step": PAST.total_seconds() / max(count, 1),
                    "step": step,
                    "tid": clock.id,
                },
            )
        print(f"  {last:,} clocks loaded ({time.monotonic() - started:.0f} s)", flush=True)
    async with service.engine.begin() as conn:
        await conn.execute(text("DELETE FROM sla.clocks WHERE id = :id"), {"id": clock.id})
    async with service.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE sla.clocks"))
    return time.monotonic() - started


async def table_figures(service: SlaService) -> dict:
    """Open clocks, the clocks table's size (heap + indexes), how long the stats loop's
    two reads take now (open clocks per measure; compliance per team over a day), and
    the API's day report (with percentiles)."""
    started = time.monotonic()
    counts = await service.clocks.open_count()
    count_seconds = time.monotonic() - started
    now, day = datetime.now(UTC), timedelta(hours=24)
    started = time.monotonic()
    await service.reports.compliance(now - day, now, "team", percentiles=False)
    compliance_seconds = time.monotonic() - started
    started = time.monotonic()
    await service.reports.compliance(now - day, now, "team")
    report_seconds = time.monotonic() - started
    async with service.engine.connect() as conn:
        size = (
            await conn.execute(text("SELECT pg_total_relation_size('sla.clocks')"))
        ).scalar_one()
    return {
        "open_clocks": sum(counts.values()),
        "clocks_table_mb": round(size / 2**20),
        "open_count_ms": round(count_seconds * 1000, 1),
        "compliance_ms": round(compliance_seconds * 1000, 1),
        "report_ms": round(report_seconds * 1000, 1),
    }


async def measure_sla(
    clocks: int = 1_000_000,
    firing: int = 20_000,
    spread_seconds: float = 120,
    window_seconds: float = 60,
    journeys: int = 0,
) -> dict:
    """Lateness of ``firing`` clocks' warnings and breaches while ``clocks`` are open."""
    if not 0 < firing <= clocks:
        raise ValueError("0 < firing <= clocks")
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    async with fresh_run(window_seconds) as settings:
        monitor = SlaService(settings)
        try:
            await monitor.start()
            idle = clocks - firing
            print(f"loading {idle:,} open clocks due from {IDLE_AFTER} on ...", flush=True)
            load_seconds = await bulk_load(monitor, idle) if idle else 0.0
            refresh_seconds = await load_journeys(monitor, journeys) if journeys else None
            collecting = CollectorProcess(bootstrap, settings.topics.sla, firing)
            seed_budget = 20 + firing / 300  # open_many runs at a few hundred/s on a busy host
            t0 = datetime.now(UTC) + timedelta(seconds=seed_budget)
            step = spread_seconds / firing
            print(f"opening {firing:,} clocks through open_many ...", flush=True)
            seed_started = time.monotonic()
            for start in range(0, firing, SEED_BATCH):
                await monitor.clocks.open_many(
                    [
                        assignment(i, t0 + timedelta(seconds=i * step))
                        for i in range(start, min(firing, start + SEED_BATCH))
                    ]
                )
            seed_seconds = time.monotonic() - seed_started
            late = datetime.now(UTC) - (t0 + timedelta(seconds=window_seconds * 0.5))
            if late > timedelta(0):
                print(f"WARNING: seeding ended {late} after the first due time")
            plan = await due_query_plan(monitor)
            tables = await table_figures(monitor)
            print(f"{tables}\nsweep query plan:\n{plan}", flush=True)
            budget = seed_budget + window_seconds + spread_seconds + 300
            results = await collecting.results(budget, f"not every clock breached in {budget} s")
        finally:
            await monitor.stop()
    lateness = results["lateness"]
    figures = {
        "sla_clocks": clocks,
        "sla_firing_clocks": firing,
        "sla_fired_events": len(lateness),
        "sla_duplicate_events": results["duplicates"],
        "sla_lateness_p50_s": round(percentile(lateness, 0.50), 4),
        "sla_lateness_p99_s": round(percentile(lateness, 0.99), 4),
        "sla_lateness_max_s": round(max(lateness), 4),
        "sla_bulk_load_clocks_per_s": round(idle / load_seconds) if idle else None,
        "sla_open_many_clocks_per_s": round(firing / seed_seconds),
        "sla_clocks_table_mb": tables["clocks_table_mb"],
        "sla_bytes_per_clock": round(tables["clocks_table_mb"] * 2**20 / clocks),
        "sla_decision_lateness_p99_s": round(percentile(results["decision_lateness"], 0.99), 4),
        "sla_stats_open_count_ms": tables["open_count_ms"],
        "sla_stats_compliance_ms": tables["compliance_ms"],
        "sla_day_report_ms": tables["report_ms"],
        "sla_sweep_uses_index": "ix_clocks_open_next_fire" in plan and "Seq Scan" not in plan,
        "sla_reporting_journeys": journeys,
        "sla_gauge_refresh_s": None if refresh_seconds is None else round(refresh_seconds, 2),
    }
    print(
        f"{clocks:,} open clocks, {firing:,} firing over {spread_seconds:.0f} s: "
        f"{len(lateness):,} events, lateness p50 {figures['sla_lateness_p50_s'] * 1000:.0f} ms, "
        f"p99 {figures['sla_lateness_p99_s'] * 1000:.0f} ms, "
        f"max {figures['sla_lateness_max_s']:.3f} s",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clocks", type=int, default=1_000_000)
    parser.add_argument("--firing", type=int, default=20_000)
    parser.add_argument("--spread-seconds", type=float, default=120)
    parser.add_argument("--window-seconds", type=float, default=60)
    parser.add_argument("--journeys", type=int, default=0, help="leads in the reporting store")
    args = parser.parse_args()
    os.environ.update(infra_env())
    figures = asyncio.run(
        measure_sla(
            args.clocks, args.firing, args.spread_seconds, args.window_seconds, args.journeys
        )
    )
    print_figures(figures)


if __name__ == "__main__":
    main()
