"""The conversion figures as Prometheus gauges, for the shipped Grafana dashboard:
the cohort of the last ``BATON_SLA_REPORTING_GAUGE_DAYS`` days, refreshed every
``BATON_SLA_REPORTING_REFRESH_SECONDS``. Labels are bounded (steps, speed-to-lead
buckets, stages), never a lead, rep or campaign; and the count of records the feed
passed over."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from baton_shared.conversion import ConversionReport
from baton_shared.conversion.figures import GroupFigures

LEADS = Gauge(
    "baton_sla_reporting_leads",
    "Leads that entered the funnel in the gauge window, by the furthest stage reached",
    ["stage"],
)
CONVERSION = Gauge(
    "baton_sla_reporting_conversion_ratio",
    "Conversion of the gauge window's cohort per step, overall (speed_to_lead=all) or by "
    "speed-to-lead bucket",
    ["step", "speed_to_lead"],
)
CYCLE = Gauge(
    "baton_sla_reporting_cycle_seconds",
    "Cycle times of the gauge window's cohort (p50, p90)",
    ["step", "quantile"],
)
MQL_TARGET = Gauge(
    "baton_sla_reporting_mql_target_ratio",
    "MQLs in the gauge window divided by the target (BATON_SLA_MQL_TARGET_PER_DAY)",
)
SKIPPED = Counter(
    "baton_sla_reporting_skipped_total",
    "Records the reporting feed passed over because they do not decode or fit "
    "(their topic's own consumer dead-letters them)",
    ["topic"],
)
STEPS = ("mql_to_sql", "sql_to_accepted", "accepted_to_won", "sql_to_won", "sql_acceptance")
CYCLES = ("mql_to_sql", "sql_to_accepted", "accepted_to_won", "sql_to_won", "speed_to_lead")
STAGES = ("leads", "mql", "sql", "accepted", "rejected", "won", "lost")


def _rates(group: GroupFigures, bucket: str) -> None:
    for step in STEPS:
        value = getattr(group, f"{step}_rate")
        CONVERSION.labels(step, bucket).set(float("nan") if value is None else value)


def publish(report: ConversionReport) -> None:
    """Set every gauge from a report grouped ``by="speed_to_lead"``."""
    total = report.total
    for stage in STAGES:
        LEADS.labels(stage).set(getattr(total, stage))
    _rates(total, "all")
    for group in report.groups:
        if group.key is not None:
            _rates(group, group.key)
    for step in CYCLES:
        cycle = getattr(total, f"{step}_seconds")
        for quantile in ("p50", "p90"):
            value = getattr(cycle, quantile)
            CYCLE.labels(step, quantile).set(float("nan") if value is None else value)
    attainment = report.mql_volume.attainment
    MQL_TARGET.set(float("nan") if attainment is None else attainment)
