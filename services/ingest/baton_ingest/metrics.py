"""Ingest's Prometheus metrics, in one place."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("baton_ingest_events_total", "Events stored in leads.events", ["source", "type"])
DUPLICATES = Counter(
    "baton_ingest_duplicates_total", "Events marked possible_duplicate", ["source"]
)
REJECTED = Counter(
    "baton_ingest_rejected_total", "Events or requests refused", ["source", "reason"]
)
REQUEST_SECONDS = Histogram(
    "baton_ingest_request_seconds",
    "Request latency, first byte to answer",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
IN_FLIGHT = Gauge(
    "baton_ingest_in_flight_requests",
    "Requests being handled now",
    multiprocess_mode="livesum",  # summed over live workers (main.py)
)
BATCH_SIZE = Histogram(
    "baton_ingest_batch_size",
    "Events per request",
    ["endpoint"],
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000),
)
