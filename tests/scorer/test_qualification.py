"""The qualification gate in the stream: with ``qualification.required``, SQL waits for a rep's
``qualified`` activities on ``leads.activity`` to confirm every field of the gate's framework
(BANT, then MEDDIC after a rules change) — real worker, real broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from baton_analytics.replay import replay_all
from baton_scorer.rules import load_rules, parse_rules
from baton_scorer.rules_topic import publish_rules
from baton_shared.schemas import Activity, ActivityKind
from tests.scorer.worker import (
    event,
    healthz,
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


MEDDIC = RULES.replace("gate-test", "gate-meddic").replace(
    "  bant: [budget, authority, need, timeline]\n", "  framework: meddic\n"
)


def qualified(
    activity_id: str, lead_id: str, bant: list[str], at: datetime, **framework: Any
) -> Activity:
    return Activity(
        activity_id=activity_id,
        lead_id=lead_id,
        rep_id="rep-1",
        kind=ActivityKind.QUALIFIED,
        bant=bant,
        occurred_at=at,
        **framework,
    )


async def test_lead_waits_for_bant_then_after_a_rules_change_for_all_six_meddic_fields(
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

        await meddic_gate(kafka_bootstrap, worker.url, prefix, now)
    finally:
        worker.stop()


async def meddic_gate(bootstrap: str, url: str, prefix: str, now: datetime) -> None:
    """Rules with a MEDDIC gate published to the running worker: a lead over the bar
    becomes SQL only once all six MEDDIC fields are confirmed; BANT's count for nothing."""
    version = parse_rules(MEDDIC).version
    await publish_rules(bootstrap, f"{prefix}scorer.rules", MEDDIC)

    async def uses_meddic() -> bool:
        return (await healthz(url))["rules_version"] == version

    await wait_until(uses_meddic, 30, "the worker to take the MEDDIC rules")
    later = now + timedelta(minutes=1)
    views = [
        event("p2", "lead-m", "page", later, page_category="pricing"),
        event("t2", "lead-m", at=later, name="Trial Started"),
    ]
    await produce(bootstrap, f"{prefix}leads.events", views)
    transitions_topic = f"{prefix}leads.transitions"
    seen = await wait_for_record(bootstrap, transitions_topic, lambda t: t["lead_id"] == "lead-m")
    assert seen[-1]["to_stage"] == "mql"
    fields = ["metrics", "economic_buyer", "decision_criteria", "decision_process"]
    fields += ["identify_pain", "champion"]
    assert f"awaits qualification ({', '.join(fields)})" in seen[-1]["reason"]

    at = [later + timedelta(seconds=s) for s in range(1, 4)]
    bant = ["budget", "authority", "need", "timeline"]
    acts = [
        qualified("m1", "lead-m", [], at[0], framework="bant", fields=bant),
        qualified("m2", "lead-m", [], at[1], framework="meddic", fields=fields[:5]),
        qualified("m3", "lead-m", [], at[2], framework="meddic", fields=fields[5:]),
    ]
    await produce(bootstrap, f"{prefix}leads.activity", [("lead-m", a.to_bytes()) for a in acts])
    seen = await wait_for_record(
        bootstrap, transitions_topic, lambda t: t["lead_id"] == "lead-m" and t["to_stage"] == "sql"
    )
    mine = [t for t in seen if t["lead_id"] == "lead-m"]
    # BANT in full and five of six MEDDIC fields changed nothing; the sixth made it SQL.
    assert [(t["to_stage"], t["trigger_event_id"]) for t in mine] == [("mql", "t2"), ("sql", "m3")]
    assert mine[-1]["reason_kind"] == "qualification"
    assert mine[-1]["rules_version"] == version
