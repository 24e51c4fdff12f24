"""The sweep's reads stay on the partial index of open clocks however many are open (so
firing lateness does not grow with them), and the monitor sleeps until the next clock is
due rather than a whole tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Select, text
from sqlalchemy.dialects import postgresql

from baton_shared.database import make_engine, migrate
from baton_sla_monitor.service import MIGRATIONS, VERSION_TABLE
from baton_sla_monitor.sweep import MIN_PAUSE_SECONDS, NEXT_DUE, due_clocks, pause_seconds

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
OPEN, CLOSED = 20_000, 20_000

# Open clocks due over the next day (warnings ahead), and as many closed ones.
SEED = text(
    "INSERT INTO sla.clocks (id, measure, lead_id, express, qualified_at, started_at, "
    "deadline_at, warn_ats, warn_fractions, next_fire_at, status) "
    "SELECT 'c' || g, 'first_touch', 'lead-' || g, false, t0, t0, "
    "t0 + make_interval(secs => g * 4), '{}', '{}', "
    "CASE WHEN g <= :open THEN t0 + make_interval(secs => g * 4) END, "
    "CASE WHEN g <= :open THEN 'open' ELSE 'met' END "
    "FROM generate_series(1, :total) AS g, (SELECT CAST(:now AS timestamptz)) AS n(t0)"
)


def test_the_pause_lasts_until_the_next_due_time_within_bounds() -> None:
    tick = 0.2
    assert pause_seconds(None, NOW, tick) == tick
    assert pause_seconds(NOW + timedelta(seconds=0.12), NOW, tick) == pytest.approx(0.12)
    assert pause_seconds(NOW + timedelta(hours=1), NOW, tick) == tick
    assert pause_seconds(NOW + timedelta(milliseconds=1), NOW, tick) == MIN_PAUSE_SECONDS
    assert pause_seconds(NOW - timedelta(seconds=5), NOW, tick) == MIN_PAUSE_SECONDS


def explain(query: Select) -> str:
    compiled = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return f"EXPLAIN {compiled}"


@pytest.mark.integration
async def test_the_sweep_reads_the_open_clocks_index_not_the_table(
    pg_cluster, unique_name: str
) -> None:
    engine = make_engine(pg_cluster.create_database(unique_name), pool_size=1)
    try:
        await migrate(engine, MIGRATIONS, VERSION_TABLE)
        async with engine.begin() as conn:
            await conn.execute(SEED, {"now": NOW, "open": OPEN, "total": OPEN + CLOSED})
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE sla.clocks"))
            plans = {
                name: "\n".join(r[0] for r in await conn.execute(text(explain(query))))
                for name, query in (
                    ("due", due_clocks(NOW + timedelta(minutes=5), 1000)),
                    ("next due", NEXT_DUE),
                )
            }
    finally:
        await engine.dispose()
    for name, plan in plans.items():
        assert "ix_clocks_open_next_fire" in plan and "Seq Scan" not in plan, (name, plan)
