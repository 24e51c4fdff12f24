"""Upgrading a live 0001 database: open clocks keep firing, closed ones keep their
outcome, and the sweep's due query runs on the partial index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from baton_shared.database import alembic_config, make_engine, migrate
from baton_sla_monitor.service import MIGRATIONS, VERSION_TABLE

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC) - timedelta(minutes=10)


async def test_upgrade_from_0001_keeps_open_clocks_due_and_met_clocks_touched(
    pg_cluster, unique_name: str
) -> None:
    engine = make_engine(pg_cluster.create_database(unique_name), pool_size=2)
    cfg = alembic_config(MIGRATIONS, VERSION_TABLE)

    def upgrade_to_0001(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0001")

    try:
        async with engine.begin() as conn:
            await conn.run_sync(upgrade_to_0001)
            for clock_id, status, closed, elapsed in (
                ("open-1", "open", None, None),
                ("met-1", "met", T0 + timedelta(seconds=30), 30.0),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO sla.clocks (id, assignment_id, lead_id, rep_id, express, "
                        "qualified_at, started_at, deadline_at, status, closed_at, "
                        "elapsed_seconds) VALUES (:id, :id, 'lead', 'rep', true, :q, :s, :d, "
                        ":status, :closed, :elapsed)"
                    ),
                    {
                        "id": clock_id,
                        "q": T0 - timedelta(seconds=2),
                        "s": T0,
                        "d": T0 + timedelta(minutes=5),
                        "status": status,
                        "closed": closed,
                        "elapsed": elapsed,
                    },
                )

        await migrate(engine, MIGRATIONS, VERSION_TABLE)

        async with engine.connect() as conn:
            rows = {
                r.id: r
                for r in await conn.execute(
                    text(
                        "SELECT id, next_fire_at, deadline_at, first_touch_at, "
                        "system_delay_seconds, warnings_sent FROM sla.clocks"
                    )
                )
            }
            await conn.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(
                r[0]
                for r in await conn.execute(
                    text(
                        "EXPLAIN SELECT id FROM sla.clocks WHERE status = 'open' AND "
                        "next_fire_at <= now() ORDER BY next_fire_at LIMIT 1000 "
                        "FOR UPDATE SKIP LOCKED"
                    )
                )
            )
    finally:
        await engine.dispose()

    assert rows["open-1"].next_fire_at == rows["open-1"].deadline_at
    assert rows["open-1"].system_delay_seconds == pytest.approx(2.0)
    assert rows["open-1"].warnings_sent == 0
    assert rows["met-1"].next_fire_at is None
    assert rows["met-1"].first_touch_at == T0 + timedelta(seconds=30)
    assert "ix_clocks_open_next_fire" in plan, plan
