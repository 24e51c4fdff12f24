"""Every Prometheus metric the router exports, and the log line of an assignment."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from baton_shared.logs import get_logger
from baton_shared.schemas import Assignment

log = get_logger(__name__)

#: Latency buckets from 1 ms to 250 ms; each histogram adds its own ends.
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25)

ASSIGNMENTS = Counter("baton_router_assignments_total", "Leads assigned", ["strategy", "pool"])
QUEUED = Counter("baton_router_queued_total", "SQLs queued because no rep was available")
NURTURED = Counter("baton_router_nurture_enrolments_total", "MQLs enrolled in a nurture track")
ESCALATIONS = Counter("baton_router_escalations_total", "SLA breaches handled", ["outcome"])
QUEUE_DEPTH = Gauge("baton_router_queue_depth", "SQLs waiting for an available rep")
ROUTE_BATCH = Histogram(
    "baton_router_route_batch_seconds",
    "One consumed batch routed: the database transaction that decides and writes it",
    buckets=(*FAST_BUCKETS, 0.5, 1, 5),
)
CONSUME_LAG = Histogram(
    "baton_router_consume_lag_seconds",
    "From the scorer emitting a transition (its emitted_at) to the router starting to route it",
    buckets=(*FAST_BUCKETS, 0.5, 1, 5, 30),
)
REP_LOAD = Gauge(
    "baton_router_rep_open_leads", "Open (not yet contacted) leads per rep", ["rep_id"]
)

WEBHOOK_ATTEMPTS = Counter(
    "baton_router_webhook_attempts_total", "Webhook delivery attempts", ["outcome", "endpoint"]
)
WEBHOOK_FAILURES = Counter(
    "baton_router_webhook_failures_total", "Failed webhook deliveries", ["endpoint"]
)
OUTBOX_DEAD = Counter(
    "baton_router_outbox_dead_total", "Outbox messages moved to dead letter", ["kind", "endpoint"]
)
TO_DELIVERED = Histogram(
    "baton_router_transition_to_webhook_seconds",
    "From the lead qualifying (transition event time) to the rep's webhook accepted",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
DISPATCH_WAIT = Histogram(
    "baton_router_dispatch_wait_seconds",
    "From an outbox row being ready in this router (committed, or leased) to its webhook "
    "request starting: event-loop and concurrency-limit queueing",
    buckets=(0.0005, *FAST_BUCKETS, 1),
)
WEBHOOK_REQUEST = Histogram(
    "baton_router_webhook_request_seconds",
    "One webhook HTTP request, sent to response read",
    buckets=(0.0005, *FAST_BUCKETS, 1, 5),
)


def record_assigned(assignment: Assignment) -> None:
    """Count and log one assignment (routed, drained from the queue, or re-assigned)."""
    ASSIGNMENTS.labels(strategy=assignment.strategy, pool=assignment.pool or "").inc()
    log.info(
        "lead_assigned",
        lead_id=assignment.lead_id,
        rep_id=assignment.rep_id,
        strategy=assignment.strategy,
        pool=assignment.pool,
        stage=assignment.stage.value,
    )
