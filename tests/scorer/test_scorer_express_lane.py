"""The scorer's express lane on the real broker: a demo request on ``leads.express`` is
scored while a bulk backlog on ``leads.events`` sits unscored ahead of it, and the copy
of it at the end of ``leads.events`` is absorbed (one transition)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.scorer.test_kill import Collector
from tests.scorer.worker import create_topics, event, produce, scorer_env, start_worker, wait_until

pytestmark = pytest.mark.integration

LEADS = 1_500
NOISE = 12_000


async def test_a_demo_request_is_scored_ahead_of_a_bulk_backlog(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = scorer_env(kafka_bootstrap, tmp_path)
    prefix = env["BATON_TOPIC_PREFIX"]
    await create_topics(env)
    now = datetime.now(UTC)
    backlog = []
    for round_ in range(2):  # two pricing views (40 points each): MQL at the second
        backlog += [
            event(f"p{i}-{round_}", f"lead-{i}", "page", now, page_category="pricing")
            for i in range(LEADS)
        ]
        backlog += [
            event(f"n{round_}-{n}", f"noise-{n % 997}", "track", now, name="Heartbeat")
            for n in range(NOISE)
        ]
    demo = event("demo-1", "demo-lead", "track", now, name="Demo Requested")
    await produce(kafka_bootstrap, f"{prefix}leads.events", [*backlog, demo])
    await produce(kafka_bootstrap, f"{prefix}leads.express", [demo])

    async with Collector(kafka_bootstrap, f"{prefix}leads.transitions") as seen:
        worker = start_worker(env, tmp_path / "scorer.log")
        try:

            async def all_scored() -> bool:
                return seen.distinct() >= LEADS + 1

            await wait_until(all_scored, 120, "the demo's and the backlog's transitions")
        finally:
            worker.stop()

    demos = [r for r in seen.records if r["lead_id"] == "demo-lead"]
    assert [(r["to_stage"], r["trigger_event_id"]) for r in demos] == [("sql", "demo-1")]
    emitted = datetime.fromisoformat(demos[0]["emitted_at"])
    ahead = [
        r
        for r in seen.records
        if r["lead_id"] != "demo-lead" and datetime.fromisoformat(r["emitted_at"]) < emitted
    ]
    assert len(ahead) < LEADS / 2, f"{len(ahead)} of {LEADS} bulk MQLs emitted before the demo"
