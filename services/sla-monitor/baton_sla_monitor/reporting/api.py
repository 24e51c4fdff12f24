"""``GET /v1/reports/conversion``: the conversion report over the reporting store,
grouped by one dimension. Mounted on the monitor's ``/v1`` router, so it takes the same
admin bearer token and answers errors as problem details."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from baton_shared.clock import utcnow
from baton_shared.conversion import ConversionReport, Dimension, conversion_report
from baton_shared.instants import Instant
from baton_sla_monitor.reporting.store import JourneyStore

DEFAULT_WINDOW = timedelta(days=30)


def conversion_window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """``[since, until)``, default the 30 days before now; given backwards, read in order."""
    until = until or utcnow()
    since = since or until - DEFAULT_WINDOW
    return min(since, until), max(since, until)


def reporting_routes(store: JourneyStore, default_target_per_day: float) -> APIRouter:
    routes = APIRouter()

    @routes.get("/reports/conversion", response_model=ConversionReport)
    async def conversion(
        by: Annotated[Dimension, Query(description="the dimension to group by")] = "all",
        since: Annotated[
            Instant | None, Query(description="cohort start; default: until - 30 days")
        ] = None,
        until: Annotated[Instant | None, Query(description="cohort end; default: now")] = None,
        mql_target_per_day: Annotated[
            float | None,
            Query(ge=0, description="MQL target per day; default BATON_SLA_MQL_TARGET_PER_DAY"),
        ] = None,
    ) -> ConversionReport:
        """Conversion MQL → SQL → accepted → won and cycle times of the leads that entered
        the funnel in the window (followed to now), grouped by ``by``: ``source`` and
        ``campaign`` (first UTM touch), ``industry``, ``segment`` (company size), ``pool``,
        ``rep`` (latest assignment), ``rules_version`` (of the qualifying transition),
        ``speed_to_lead`` (SQL → first contact: ``under_5m``, ``5m_to_1h``,
        ``1h_to_24h``, ``over_24h``, ``not_contacted``) or ``all``. Also the MQL volume
        against its target and the SQL acceptance rate."""
        start, end = conversion_window(since, until)
        target = default_target_per_day if mql_target_per_day is None else mql_target_per_day
        journeys = await store.window(start, end)
        # A month of leads: computed off the event loop, which the sweep shares.
        return await asyncio.to_thread(conversion_report, journeys, start, end, by, target)

    return routes
