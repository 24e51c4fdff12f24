"""The scorer's metrics, scraped from a real worker's /metrics: everything the issue asks
for (events scored, transitions by stage and reason, event-time and offset lag, table
sizes, rules version, DLQ count) is there and counts what happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from baton_scorer.rules import load_rules
from baton_scorer.stream import offset_lag
from tests.scorer.worker import (
    event,
    produce,
    rules_worker_env,
    sample,
    scrape,
    start_worker,
    wait_until,
)

pytestmark = pytest.mark.integration

RULES = """
name: metrics-test
engagement: {pages: {pricing: 40, docs: 10}}
express_lanes: [Demo Requested]
"""


async def test_metrics_count_scoring_transitions_lag_tables_rules_and_dead_letters(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env, rules_file = await rules_worker_env(kafka_bootstrap, tmp_path, RULES)
    prefix = env["BATON_TOPIC_PREFIX"]
    worker = start_worker(env, tmp_path / "scorer.log")
    try:
        # Everything happened two minutes ago: the worker is catching up.
        then = datetime.now(UTC) - timedelta(minutes=2)
        await produce(
            kafka_bootstrap,
            f"{prefix}leads.events",
            [
                event("e1", "lead-a", "page", then, page_category="pricing"),
                event("e2", "lead-a", "page", then, page_category="pricing"),  # MQL at 80
                event("e3", "lead-b", at=then, name="Demo Requested"),  # SQL, express lane
                event("e4", "lead-c", "page", then, page_category="docs"),
                event("e5", "anon-1", "page", then, anonymous_id="anon-1", page_category="docs"),
                ("lead-x", b"not json"),
            ],
        )
        version = load_rules(rules_file).version
        wanted = {
            ("baton_scorer_events_total", (("outcome", "scored"),)): 4,
            ("baton_scorer_events_total", (("outcome", "held_anonymous"),)): 1,
            ("baton_scorer_events_total", (("outcome", "dead_letter"),)): 1,
            ("baton_scorer_transitions_total", (("reason", "threshold"), ("to_stage", "mql"))): 1,
            (
                "baton_scorer_transitions_total",
                (("reason", "express_lane"), ("to_stage", "sql")),
            ): 1,
            ("baton_scorer_dead_letters_total", ()): 1,
            ("baton_scorer_table_entries", (("table", "leads"),)): 3,
            ("baton_scorer_table_entries", (("table", "aliases"),)): 1,
            ("baton_scorer_rules_version_info", (("version", version),)): 1,
            ("baton_scorer_consumer_lag_messages", ()): 0,
        }
        metrics: dict = {}

        async def all_counted() -> bool:
            nonlocal metrics
            metrics = await scrape(worker.url)
            return all(metrics.get(key) == value for key, value in wanted.items())

        try:
            await wait_until(all_counted, 60, "every metric to count what happened")
        except AssertionError:
            differ = {k: (metrics.get(k), v) for k, v in wanted.items() if metrics.get(k) != v}
            raise AssertionError(f"metrics (seen, wanted) that differ: {differ}") from None
        lag = sample(metrics, "baton_scorer_event_time_lag_seconds")
        assert lag is not None and 120 <= lag < 180
    finally:
        worker.stop()


def test_offset_lag_counts_unread_records_of_partitions_read_so_far() -> None:
    highwater = {"p0": 10, "p1": 5, "p2": 7}.get  # next offset to be written
    read = {"p0": 9, "p1": 2, "p2": None}  # last offset read; p2 not read yet
    assert offset_lag(["p0", "p1", "p2"], highwater, read) == 0 + 2 + 0
