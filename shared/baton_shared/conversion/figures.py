"""The conversion report: journeys in, figures out, grouped by one dimension. Pure.

The cohort of a window is the leads that *entered* the funnel in it (their first MQL,
or their first SQL for a lead that skipped MQL on an express lane); each is followed to
the end of the data, so a lead that became MQL in March and was won in May counts in
March's conversion. Per group:

* counts: leads, mql, sql, accepted, rejected, won, lost (a stage counts when the lead
  ever reached it);
* conversion: ``mql_to_sql`` (MQLs that became SQL after), ``sql_to_accepted``,
  ``accepted_to_won``, ``sql_to_won``, and ``sql_acceptance`` = accepted / (accepted +
  rejected) among SQLs (the marketing-side SLA: how many SQLs sales takes);
* cycle times (p50/p90 seconds): MQL → SQL, SQL → accepted, accepted → won, SQL → won,
  and speed-to-lead (SQL → first ``contacted``);
* dispositions of rejected and lost leads by code; leads whose first-touch clock
  breached.

The MQL target is a volume: leads whose first MQL falls in the window, against
``mql_target_per_day`` times the window's days.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Literal, get_args

from pydantic import BaseModel

from baton_shared.conversion.journeys import Journey
from baton_shared.stats import percentiles, ratio

Dimension = Literal[
    "all",
    "source",
    "campaign",
    "industry",
    "segment",
    "pool",
    "rep",
    "rules_version",
    "speed_to_lead",
]
DIMENSIONS: tuple[str, ...] = get_args(Dimension)
#: Speed-to-lead buckets: upper bound in seconds (exclusive) and name.
SPEED_BUCKETS = ((300, "under_5m"), (3600, "5m_to_1h"), (86400, "1h_to_24h"))
OVER_24H = "over_24h"
NOT_CONTACTED = "not_contacted"
PCTS = (50, 90)


class Cycle(BaseModel):
    count: int
    p50: float | None
    p90: float | None


class GroupFigures(BaseModel):
    """One group's cohort. ``key`` is None for leads without a value (no UTM source, no
    rep yet, an MQL that never became SQL for ``speed_to_lead``)."""

    key: str | None
    leads: int
    mql: int
    sql: int
    accepted: int
    rejected: int
    won: int
    lost: int
    mql_to_sql_rate: float | None
    sql_to_accepted_rate: float | None
    accepted_to_won_rate: float | None
    sql_to_won_rate: float | None
    sql_acceptance_rate: float | None
    mql_to_sql_seconds: Cycle
    sql_to_accepted_seconds: Cycle
    accepted_to_won_seconds: Cycle
    sql_to_won_seconds: Cycle
    speed_to_lead_seconds: Cycle
    sla_breached: int
    rejected_by_disposition: dict[str, int]
    lost_by_disposition: dict[str, int]


class MqlTarget(BaseModel):
    mql: int
    target: float | None
    attainment: float | None  # mql / target


class ConversionReport(BaseModel):
    since: datetime
    until: datetime
    by: Dimension
    mql_volume: MqlTarget
    total: GroupFigures
    groups: list[GroupFigures]


def speed_bucket(j: Journey) -> str | None:
    """The lead's speed-to-lead bucket; None for a lead that never became SQL."""
    if j.sql_at is None:
        return None
    touch = j.first_contact_at
    if touch is None:
        return NOT_CONTACTED
    seconds = (touch - j.sql_at).total_seconds()
    return next((name for bound, name in SPEED_BUCKETS if seconds < bound), OVER_24H)


KEYS: dict[str, Callable[[Journey], str | None]] = {
    "all": lambda j: None,
    "source": lambda j: j.source,
    "campaign": lambda j: j.campaign,
    "industry": lambda j: j.industry,
    "segment": lambda j: j.segment,
    "pool": lambda j: j.pool,
    "rep": lambda j: j.rep_id,
    "rules_version": lambda j: j.rules_version,
    "speed_to_lead": speed_bucket,
}


def _after(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()


def _cycle(values: Iterable[float | None]) -> Cycle:
    present = [v for v in values if v is not None]
    got = percentiles(present, PCTS)
    return Cycle(count=len(present), p50=got.get(50), p90=got.get(90))


def figures(key: str | None, cohort: list[Journey]) -> GroupFigures:
    mql = [j for j in cohort if j.mql_at is not None]
    sql = [j for j in cohort if j.sql_at is not None]
    mql_then_sql = [j for j in mql if _after(j.mql_at, j.sql_at) is not None]
    accepted = [j for j in sql if j.accepted_at is not None]
    rejected = [j for j in sql if j.rejected_at is not None]
    won_sql = [j for j in sql if j.won_at is not None]
    won_accepted = [j for j in accepted if j.won_at is not None]
    contacted = [j for j in sql if j.first_contact_at is not None]
    return GroupFigures(
        key=key,
        leads=len(cohort),
        mql=len(mql),
        sql=len(sql),
        accepted=len(accepted),
        rejected=len(rejected),
        won=sum(1 for j in cohort if j.won_at is not None),
        lost=sum(1 for j in cohort if j.lost_at is not None),
        mql_to_sql_rate=ratio(len(mql_then_sql), len(mql)),
        sql_to_accepted_rate=ratio(len(accepted), len(sql)),
        accepted_to_won_rate=ratio(len(won_accepted), len(accepted)),
        sql_to_won_rate=ratio(len(won_sql), len(sql)),
        sql_acceptance_rate=ratio(len(accepted), len(accepted) + len(rejected)),
        mql_to_sql_seconds=_cycle(_after(j.mql_at, j.sql_at) for j in mql_then_sql),
        sql_to_accepted_seconds=_cycle(_after(j.sql_at, j.accepted_at) for j in accepted),
        accepted_to_won_seconds=_cycle(_after(j.accepted_at, j.won_at) for j in won_accepted),
        sql_to_won_seconds=_cycle(_after(j.sql_at, j.won_at) for j in won_sql),
        speed_to_lead_seconds=_cycle(_after(j.sql_at, j.first_contact_at) for j in contacted),
        sla_breached=sum(1 for j in cohort if j.sla_breached),
        rejected_by_disposition=_codes(j.rejected_code for j in cohort if j.rejected_at),
        lost_by_disposition=_codes(j.lost_code for j in cohort if j.lost_at),
    )


def _codes(codes: Iterable[str | None]) -> dict[str, int]:
    return dict(sorted(Counter(c or "none" for c in codes).items()))


def _holds(since: datetime, until: datetime, at: datetime | None) -> bool:
    return at is not None and since <= at < until


def conversion_report(
    journeys: Iterable[Journey],
    since: datetime,
    until: datetime,
    by: Dimension = "all",
    mql_target_per_day: float | None = None,
) -> ConversionReport:
    """The report over the leads that entered the funnel in ``[since, until)``; merged-
    away journeys are skipped (their facts are their survivor's)."""
    live = [j for j in journeys if j.merged_into is None]
    cohort = [j for j in live if _holds(since, until, j.entered_at)]
    groups: dict[str | None, list[Journey]] = {}
    key_of = KEYS[by]
    for j in cohort:
        groups.setdefault(key_of(j), []).append(j)
    mql = sum(1 for j in live if _holds(since, until, j.mql_at))
    days = (until - since) / timedelta(days=1)
    target = mql_target_per_day * days if mql_target_per_day else None
    return ConversionReport(
        since=since,
        until=until,
        by=by,
        mql_volume=MqlTarget(mql=mql, target=target, attainment=ratio_of(mql, target)),
        total=figures(None, cohort),
        groups=[figures(k, groups[k]) for k in sorted(groups, key=lambda k: (k is None, k or ""))],
    )


def ratio_of(part: float, whole: float | None) -> float | None:
    return part / whole if whole else None


#: The columns of the report as CSV, one row per group (rates as fractions, times in
#: seconds; a total row with an empty key comes first).
CSV_COLUMNS = (
    "key", "leads", "mql", "sql", "accepted", "rejected", "won", "lost",
    "mql_to_sql_rate", "sql_to_accepted_rate", "accepted_to_won_rate", "sql_to_won_rate",
    "sql_acceptance_rate", "mql_to_sql_p50_seconds", "sql_to_accepted_p50_seconds",
    "accepted_to_won_p50_seconds", "sql_to_won_p50_seconds", "speed_to_lead_p50_seconds",
    "sla_breached",
)  # fmt: skip


def csv_rows(report: ConversionReport) -> list[dict[str, object]]:
    """The report as CSV rows (:data:`CSV_COLUMNS`): the total (key ``total``), then
    each group (an empty key for leads without a value)."""
    rows = []
    for label, g in [("total", report.total), *((g.key or "", g) for g in report.groups)]:
        row: dict[str, object] = {**g.model_dump(), "key": label}
        for cycle in ("mql_to_sql", "sql_to_accepted", "accepted_to_won", "sql_to_won"):
            row[f"{cycle}_p50_seconds"] = getattr(g, f"{cycle}_seconds").p50
        row["speed_to_lead_p50_seconds"] = g.speed_to_lead_seconds.p50
        rows.append({c: row[c] for c in CSV_COLUMNS})
    return rows
