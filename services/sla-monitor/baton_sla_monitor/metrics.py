"""The SLA monitor's Prometheus metrics (labels: stage, team; ``none`` for no team;
measure: ``first_touch`` or ``assign``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SLA_EVENTS = Counter(
    "baton_sla_events_total",
    "SLA events published: started, at_risk (warnings), breached, met",
    ["status", "stage", "team", "measure"],
)
SPEED_TO_LEAD = Histogram(
    "baton_sla_speed_to_lead_seconds",
    "Rep delay: assignment to first touch (every touched clock, met or not)",
    ["stage", "team"],
    buckets=(10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 172800),
)
TIME_TO_ASSIGN = Histogram(
    "baton_sla_time_to_assign_seconds",
    "System delay: qualifying action to assignment",
    ["stage", "team"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
FIRE_LATENESS = Histogram(
    "baton_sla_breach_lateness_seconds",
    "How long after it was due a breach or warning was published",
    ["status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30, 300),
)
OPEN_CLOCKS = Gauge(
    "baton_sla_open_clocks",
    "Open clocks: waiting for a first touch (first_touch) or an assignment (assign)",
    ["measure"],
)
COMPLIANCE = Gauge(
    "baton_sla_compliance_ratio",
    "Met / (met + breached) over clocks started in the last 24 hours",
    ["team"],
)


def team_label(team: str | None) -> str:
    return team or "none"
