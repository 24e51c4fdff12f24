"""The scorer worker as a real process on the real broker: stitching, dedup, DLQ, timers, reload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from baton_scorer.rules import load_rules
from baton_shared.schemas import Activity, ActivityKind
from tests.scorer.worker import event, produce, rules_worker_env, start_worker, wait_until
from tests.support.kafka import read_all, wait_for_record

pytestmark = pytest.mark.integration
TOKEN = "worker-test-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}

RULES = """
name: worker-test
thresholds: {mql: 50, sql: 100, hysteresis: 10}
engagement:
  half_life_days: 14
  pages: {pricing: 40, docs: 10}
express_lanes: [Demo Requested]
recycle: {cold_days: 0.00005}
"""


async def test_worker_stitches_dedups_dead_letters_and_recycles(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env, rules_file = await rules_worker_env(kafka_bootstrap, tmp_path, RULES)
    env["BATON_ADMIN_TOKEN"] = TOKEN
    prefix = env["BATON_TOPIC_PREFIX"]
    events_topic, transitions_topic = f"{prefix}leads.events", f"{prefix}leads.transitions"
    worker = start_worker(env, tmp_path / "scorer.log")
    try:
        now = datetime.now(UTC)
        anon = "anon-7"
        await produce(
            kafka_bootstrap,
            events_topic,
            [
                # Two anonymous pricing views (80 points) before anyone knows who it is...
                event("a1", anon, "page", now, anonymous_id=anon, page_category="pricing"),
                event("a2", anon, "page", now, anonymous_id=anon, page_category="pricing"),
                # ...a redelivery of one of them, and a poison record...
                event("a2", anon, "page", now, anonymous_id=anon, page_category="pricing"),
                ("lead-x", b'{"not": "a lead event"}'),
                # ...then the identify: the anonymous history now counts for lead-7.
                event("i1", "lead-7", "identify", now, anonymous_id=anon, user_id="lead-7"),
            ],
        )
        seen = await wait_for_record(
            kafka_bootstrap, transitions_topic, lambda t: t["lead_id"] == "lead-7", 60
        )
        mql = seen[-1]
        assert mql["to_stage"] == "mql"
        assert mql["score"] == pytest.approx(80, abs=0.01)  # 2 views, the duplicate ignored
        assert [s["signal"] for s in mql["top_signals"]] == ["page:pricing"]
        assert mql["rules_version"] == load_rules(rules_file).version
        assert mql["emitted_at"] is not None
        assert not any(t["lead_id"] == anon for t in seen)

        letters = await wait_for_record(
            kafka_bootstrap, f"{events_topic}.dlq", lambda d: d["key"] == "lead-x", 30
        )
        assert "validation error" in letters[-1]["error"]

        # An express SQL goes cold after ~4 s of no engagement: the timer fires with no new event.
        await produce(
            kafka_bootstrap, events_topic, [event("d1", "lead-9", at=now, name="Demo Requested")]
        )
        recycled = await wait_for_record(
            kafka_bootstrap,
            transitions_topic,
            lambda t: t["lead_id"] == "lead-9" and t["to_stage"] == "recycled",
            60,
        )
        assert recycled[-1]["reason_kind"] == "recycle"

        # A won SQL becomes a customer and is never recycled: lead-12 qualifies after it
        # on the same cold timer, so once lead-12 is recycled, lead-11's timer would have
        # fired too.
        activity = f"{prefix}leads.activity"
        await produce(
            kafka_bootstrap, events_topic, [event("d3", "lead-11", at=now, name="Demo Requested")]
        )
        won = Activity(
            activity_id="act-won", lead_id="lead-11", kind=ActivityKind.WON, occurred_at=now
        )
        await produce(kafka_bootstrap, activity, [("lead-11", won.to_bytes())])
        await wait_for_record(
            kafka_bootstrap,
            transitions_topic,
            lambda t: t["lead_id"] == "lead-11" and t["to_stage"] == "customer",
            60,
        )
        await produce(
            kafka_bootstrap, events_topic, [event("d4", "lead-12", at=now, name="Demo Requested")]
        )
        after = await wait_for_record(
            kafka_bootstrap,
            transitions_topic,
            lambda t: t["lead_id"] == "lead-12" and t["to_stage"] == "recycled",
            60,
        )
        lead_11 = [t["to_stage"] for t in after if t["lead_id"] == "lead-11"]
        assert lead_11 == ["sql", "customer"]
        async with httpx.AsyncClient() as http:
            view = await http.get(f"{worker.url}/v1/leads/lead-11", headers=ADMIN)
        assert view.json()["stage"] == "customer"

        # A changed rules file is picked up without a restart.
        edited = RULES.replace("worker-test", "worker-test-2").replace("0.00005", "30")
        rules_file.write_text(edited)
        new_version = load_rules(rules_file).version
        async with httpx.AsyncClient() as http:

            async def reloaded() -> bool:
                body = (await http.get(f"{worker.url}/healthz")).json()
                return body.get("rules_version") == new_version

            await wait_until(reloaded, 30, "the rules reload")
            metrics = (await http.get(f"{worker.url}/metrics")).text
            assert (await http.get(f"{worker.url}/livez")).json() == {"status": "alive"}
            ready = (await http.get(f"{worker.url}/readyz")).json()
            assert ready["status"] == "ready"
        assert f'baton_scorer_rules_version_info{{version="{new_version}"}} 1.0' in metrics
        assert 'baton_scorer_events_total{outcome="duplicate"}' in metrics
        assert "baton_scorer_dead_letters_total 1.0" in metrics
        await produce(
            kafka_bootstrap, events_topic, [event("d2", "lead-10", at=now, name="Demo Requested")]
        )
        later = await wait_for_record(
            kafka_bootstrap, transitions_topic, lambda t: t["lead_id"] == "lead-10", 60
        )
        assert later[-1]["rules_version"] == new_version

        # A rep rejects the SQL: back to nurture, with the reason.
        rejection = Activity(
            activity_id="act-1",
            lead_id="lead-10",
            kind=ActivityKind.REJECTED,
            reason="no budget this year",
            occurred_at=datetime.now(UTC),
        )
        await produce(kafka_bootstrap, activity, [("lead-10", rejection.to_bytes())])
        rejected = await wait_for_record(
            kafka_bootstrap,
            transitions_topic,
            lambda t: t["lead_id"] == "lead-10" and t["to_stage"] == "recycled",
            60,
        )
        assert rejected[-1]["reason_kind"] == "rejection"
        assert "no budget this year" in rejected[-1]["reason"]

        # A lost deal with a disposition code: the default rules disqualify on bad data.
        lost = Activity(
            activity_id="act-2",
            lead_id="lead-10",
            kind=ActivityKind.LOST,
            disposition="bad_data",
            reason="the number was wrong",
            occurred_at=datetime.now(UTC),
        )
        await produce(kafka_bootstrap, activity, [("lead-10", lost.to_bytes())])
        disqualified = await wait_for_record(
            kafka_bootstrap,
            transitions_topic,
            lambda t: t["lead_id"] == "lead-10" and t["to_stage"] == "disqualified",
            60,
        )
        assert disqualified[-1]["reason"] == "lost (bad data): the number was wrong"
    finally:
        worker.stop()


async def test_cold_timer_survives_a_crash(kafka_bootstrap: str, tmp_path: Path) -> None:
    cold_in_17_s = RULES.replace("cold_days: 0.00005", "cold_days: 0.0002")
    env, _ = await rules_worker_env(kafka_bootstrap, tmp_path, cold_in_17_s)
    prefix = env["BATON_TOPIC_PREFIX"]
    worker = start_worker(env, tmp_path / "scorer.log")
    transitions_topic = f"{prefix}leads.transitions"
    try:
        now = datetime.now(UTC)
        await produce(
            kafka_bootstrap,
            f"{prefix}leads.events",
            [event("d1", "lead-1", at=now, name="Demo Requested")],
        )
        await wait_for_record(kafka_bootstrap, transitions_topic, lambda t: t["to_stage"] == "sql")
        worker.kill()  # the timer is only in the table's changelog now
        worker = start_worker(env, tmp_path / "scorer-2.log")
        seen = await wait_for_record(
            kafka_bootstrap, transitions_topic, lambda t: t["to_stage"] == "recycled", 90
        )
        due = now + timedelta(days=0.0002)
        assert datetime.fromisoformat(seen[-1]["occurred_at"]) == pytest.approx(
            due, abs=timedelta(seconds=1)
        )
        everything = await read_all(kafka_bootstrap, transitions_topic)
        assert sorted({t["transition_id"] for t in everything}) == sorted(
            {t["transition_id"] for t in seen}
        )
        assert {t["to_stage"] for t in everything} == {"sql", "recycled"}
    finally:
        worker.stop()
