"""The qualification gate in the stream: with ``qualification.required``, SQL waits for a rep's
``qualified`` activity (BANT) on ``leads.activity`` — real worker, real broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from baton_analytics.replay import replay_all
from baton_scorer.rules import load_rules
from baton_shared.schemas import Activity, ActivityKind
from tests.scorer.worker import (
    event,
    produce,
    rules_worker_env,
    sample,
    scrape,
    start_worker,
    wait_until,
)
from tests.support.kafka import read_all, wait_for_record

pytestmark = pytest.mark.integration

RULES = """
name: gate-test
thresholds: {mql: 50, sql: 100, hysteresis: 10}
engagement:
  half_life_days: 14
  pages: {pricing: 40}
  events: {Trial Started: 70}
qualification:
  required: true
  bant: [budget, authority, need, timeline]
"""


def qualified(activity_id: str, lead_id: str, bant: list[str], at: datetime) -> Activity:
    return Activity(
        activity_id=activity_id,
        lead_id=lead_id,
        rep_id="rep-1",
        kind=ActivityKind.QUALIFIED,
        bant=bant,
        occurred_at=at,
    )


async def test_lead_over_the_sql_bar_waits_for_bant_then_becomes_sql_by_qualification(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env, rules_file = await rules_worker_env(kafka_bootstrap, tmp_path, RULES)
    prefix = env["BATON_TOPIC_PREFIX"]
    events_topic, activity_topic = f"{prefix}leads.events", f"{prefix}leads.activity"
    transitions_topic = f"{prefix}leads.transitions"
    worker = start_worker(env, tmp_path / "scorer.log")
    try:
        now = datetime.now(UTC)
        views = [  # 110 points at once: over the SQL bar of 100, straight from new
            event("p1", "lead-q", "page", now, page_category="pricing"),
            event("t1", "lead-q", at=now, name="Trial Started"),
        ]
        await produce(kafka_bootstrap, events_topic, views)
        seen = await wait_for_record(
            kafka_bootstrap, transitions_topic, lambda t: t["lead_id"] == "lead-q", 60
        )
        mql = seen[-1]
        assert mql["to_stage"] == "mql"
        assert "awaits qualification (budget, authority, need, timeline)" in mql["reason"]

        partial = qualified("q1", "lead-q", ["budget", "need"], now + timedelta(seconds=5))
        full = qualified("q2", "lead-q", ["authority", "timeline"], now + timedelta(seconds=6))
        await produce(
            kafka_bootstrap,
            activity_topic,
            [("lead-q", partial.to_bytes()), ("lead-q", full.to_bytes())],
        )
        seen = await wait_for_record(
            kafka_bootstrap, transitions_topic, lambda t: t["to_stage"] == "sql", 60
        )
        sql = seen[-1]
        # The partial confirmation alone changed nothing; the one completing BANT did it.
        assert [t["to_stage"] for t in seen] == ["mql", "sql"]
        assert sql["reason_kind"] == "qualification"
        assert sql["from_stage"] == "mql"
        assert sql["trigger_event_id"] == "q2"
        assert sql["rules_version"] == load_rules(rules_file).version

        async def counted() -> bool:
            metrics = await scrape(worker.url)
            return (
                sample(metrics, "baton_scorer_rep_actions_total", kind="qualified") == 2
                and sample(
                    metrics,
                    "baton_scorer_transitions_total",
                    to_stage="sql",
                    reason="qualification",
                )
                == 1
            )

        await wait_until(counted, 30, "the rep actions and the SQL in /metrics")

        # Replay applies the same activities the same way: the very same transitions.
        everything = await read_all(kafka_bootstrap, transitions_topic)
        replayed = replay_all([*views, partial, full], load_rules(rules_file), None)
        assert [t.transition_id for t in replayed.transitions] == [
            t["transition_id"] for t in everything
        ]
        assert replayed.transitions[-1].reason_kind == "qualification"
    finally:
        worker.stop()
