"""Reporting queries over the clocks: at risk now, breached in a window, compliance
and speed-to-lead percentiles per rep or per team. Computed in PostgreSQL, so a
window of a million clocks costs one indexed scan, not a million rows over the wire.
The lists are read a page at a time, in the order of their :class:`SortKey`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Float, cast, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_shared.pagination import SortKey
from baton_sla_monitor.tables import Clock

GroupBy = Literal["rep", "team"]
Measure = Literal["first_touch", "assign", "attempts"]
QUANTILES = (0.5, 0.9, 0.99)
LEAD_CLOCKS = SortKey(Clock.started_at, Clock.id)
AT_RISK = SortKey(Clock.deadline_at, Clock.id)
BREACHED = SortKey(Clock.deadline_at, Clock.id, descending=True)
After = tuple[Any, ...] | None


class Percentiles(BaseModel):
    p50: float | None
    p90: float | None
    p99: float | None


class ComplianceRow(BaseModel):
    """One rep's or team's clocks started in the window."""

    key: str | None
    clocks: int
    met: int
    breached: int
    open: int
    reassigned: int
    compliance_ratio: float | None  # met / (met + breached); None when nothing closed
    speed_to_lead_seconds: Percentiles  # over touched clocks (met, or touched after breach)
    time_to_assign_seconds: Percentiles
    touched: int


def _of(measure: Measure | None) -> list[Any]:
    return [] if measure is None else [Clock.measure == measure]


def _percentiles(values: list[float] | None) -> Percentiles:
    p50, p90, p99 = values if values else (None, None, None)
    return Percentiles(p50=p50, p90=p90, p99=p99)


class Reports:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self._sessions = sessions

    async def lead_clocks(self, lead_id: str, after: After, limit: int) -> list[Clock]:
        """A lead's clocks, oldest first."""
        query = select(Clock).where(Clock.lead_id == lead_id)
        return await LEAD_CLOCKS.read(self._sessions, query, after, limit)

    async def at_risk(
        self, limit: int, measure: Measure | None = None, after: After = None
    ) -> list[Clock]:
        """Open clocks that have had a warning, most urgent first (both measures unless
        ``measure`` is given: a lead waiting for an assignment is at risk too)."""
        query = select(Clock).where(Clock.status == "open", Clock.warnings_sent > 0, *_of(measure))
        return await AT_RISK.read(self._sessions, query, after, limit)

    async def breached(
        self,
        since: datetime,
        until: datetime,
        limit: int,
        measure: Measure | None = None,
        after: After = None,
    ) -> list[Clock]:
        """Clocks whose deadline passed untouched (or unassigned) in ``[since, until)``,
        newest first."""
        query = select(Clock).where(
            Clock.status == "breached",
            Clock.deadline_at >= since,
            Clock.deadline_at < until,
            *_of(measure),
        )
        return await BREACHED.read(self._sessions, query, after, limit)

    async def compliance(
        self, since: datetime, until: datetime, by: GroupBy, percentiles: bool = True
    ) -> list[ComplianceRow]:
        """Per rep or team, over the first-touch clocks started in ``[since, until)`` (an
        MQL clock no SDR task took has no rep: its row's key is null). Without
        ``percentiles`` only the counts (and the ratio) are computed: no sort of the
        window's delays, which costs most at a million clocks."""
        key = Clock.rep_id if by == "rep" else Clock.team
        quantiles = cast(literal(list(QUANTILES), ARRAY(Float)), ARRAY(Float))

        def count(status: str):  # type: ignore[no-untyped-def]
            return func.count().filter(Clock.status == status)

        def spread(of: Any, *where: Any) -> Any:
            if not percentiles:
                return literal(None, ARRAY(Float))
            ordered = func.percentile_cont(quantiles).within_group(of)
            return ordered.filter(*where) if where else ordered

        query = (
            select(
                key.label("key"),
                func.count().label("clocks"),
                count("met").label("met"),
                count("breached").label("breached"),
                count("open").label("open"),
                count("reassigned").label("reassigned"),
                func.count(Clock.first_touch_at).label("touched"),
                spread(Clock.elapsed_seconds, Clock.first_touch_at.is_not(None)).label("speed"),
                spread(Clock.system_delay_seconds).label("assign"),
            )
            .where(
                Clock.started_at >= since,
                Clock.started_at < until,
                Clock.measure == "first_touch",
            )
            .group_by(key)
            .order_by(key)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).mappings().all()
        out = []
        for row in rows:
            closed = row["met"] + row["breached"]
            out.append(
                ComplianceRow(
                    key=row["key"],
                    clocks=row["clocks"],
                    met=row["met"],
                    breached=row["breached"],
                    open=row["open"],
                    reassigned=row["reassigned"],
                    touched=row["touched"],
                    compliance_ratio=row["met"] / closed if closed else None,
                    speed_to_lead_seconds=_percentiles(row["speed"]),
                    time_to_assign_seconds=_percentiles(row["assign"]),
                )
            )
        return out
