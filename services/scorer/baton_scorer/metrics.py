"""The scorer's Prometheus metrics (``baton_scorer_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "baton_scorer_events_total",
    "Events handled, by outcome (scored, duplicate, held_anonymous, dead_letter)",
    ["outcome"],
)
TRANSITIONS = Counter(
    "baton_scorer_transitions_total", "Stage transitions emitted", ["to_stage", "reason"]
)
ACTIVITIES = Counter(
    "baton_scorer_rep_actions_total",
    "Rep activities applied to a lead's stage (qualified, rejected, lost, won)",
    ["kind"],
)
DEAD_LETTERS = Counter("baton_scorer_dead_letters_total", "Records sent to the DLQ")
REBALANCE_REREADS = Counter(
    "baton_scorer_rebalance_rereads_total",
    "Records acked during a rebalance or stop, left uncommitted to be read again",
)
PARTITION_REREADS = Counter(
    "baton_scorer_partition_rereads_total",
    "Partitions read again from their committed offset, whose record was never processed",
)
EVENT_TIME_LAG = Gauge(
    "baton_scorer_event_time_lag_seconds",
    "Wall clock when the last batch was durable minus the newest event time in it",
)
CONSUMER_LAG = Gauge(
    "baton_scorer_consumer_lag_messages", "High water minus read offset, summed over partitions"
)
TABLE_SIZE = Gauge("baton_scorer_table_entries", "Entries in the scorer's tables", ["table"])
STANDBY_LAG = Gauge(
    "baton_scorer_standby_lag_records",
    "Changelog records the worker's standby copies still have to read (to the end they had"
    " when assigned)",
)
RULES_VERSION = Gauge(
    "baton_scorer_rules_version_info", "The rules version in use (value 1)", ["version"]
)
RULES_RELOAD_ERRORS = Counter(
    "baton_scorer_rules_reload_errors_total", "Rules file changes refused as invalid"
)
RULES_FOLLOW_ERRORS = Counter(
    "baton_scorer_rules_follow_errors_total",
    "Failures reading the rules topic (the follower backs off and resumes)",
)
TIMERS_FIRED = Counter("baton_scorer_timers_fired_total", "Recycle timers that fired")
BATCH_SECONDS = Gauge("baton_scorer_last_batch_seconds", "Processing time of the last batch")
MERGES = Counter(
    "baton_scorer_merges_total", "Leads merged into another lead (alias, identify with email)"
)
_LANE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LANE_PICKUP_SECONDS = Histogram(
    "baton_scorer_pickup_seconds",
    "Kafka timestamp of a record to its lane taking it, by lane (express: every record;"
    " bulk: the oldest record of each chunk)",
    ["lane"],
    buckets=_LANE_BUCKETS,
)
LANE_WAIT_SECONDS = Histogram(
    "baton_scorer_lane_wait_seconds",
    "Wait for the worker's state before scoring, by lane (express: behind the bulk chunk"
    " in progress)",
    ["lane"],
    buckets=_LANE_BUCKETS,
)
LANE_BATCH_SECONDS = Histogram(
    "baton_scorer_batch_seconds",
    "Scoring a batch (express) or chunk (bulk) and making it durable, by lane",
    ["lane"],
    buckets=_LANE_BUCKETS,
)
