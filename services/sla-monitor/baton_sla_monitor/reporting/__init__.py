"""Conversion reporting in the SLA monitor: a store of per-lead journeys fed from the
topics (:mod:`.feed` into :mod:`.store`), the report API (:mod:`.api`), gauges for the
dashboard (:mod:`.gauges`) and the rebuild from the topics (:mod:`.rebuild`). The
figures themselves come from :mod:`baton_shared.conversion`, as ``baton funnel``'s do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from baton_shared.database import make_sessionmaker, migrate
from baton_sla_monitor.reporting.feed import ReportingFeed
from baton_sla_monitor.reporting.store import JourneyStore

if TYPE_CHECKING:
    from baton_sla_monitor.config import SlaSettings

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_sla_reporting"


async def migrate_reporting(engine: AsyncEngine) -> None:
    """The reporting tables, on their own migration chain (schema ``reporting``)."""
    await migrate(engine, MIGRATIONS, VERSION_TABLE)


def reporting_feed(settings: SlaSettings, engine: AsyncEngine) -> ReportingFeed:
    """The feed (and its store) of a monitor with these settings."""
    return ReportingFeed(
        JourneyStore(make_sessionmaker(engine)),
        settings.kafka,
        settings.topics,
        retry=settings.consume_retry,
        batch=settings.consume_batch,
        refresh_seconds=settings.reporting_refresh_seconds,
        gauge_days=settings.reporting_gauge_days,
        mql_target_per_day=settings.mql_target_per_day,
    )
