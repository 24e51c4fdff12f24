"""GET /v1/leads/{key} on a real worker: any lead by its userId, a stitched anonymousId or
its email, with the score and stage its transitions showed; 401, 404 and 422 otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner

from baton_scorer.rules import load_rules
from tests.scorer.worker import (
    event,
    healthz,
    produce,
    rules_worker_env,
    start_worker,
    wait_until,
)
from tests.support.kafka import wait_for_record

pytestmark = pytest.mark.integration

TOKEN = "lookup-test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RULES = """
name: lookup-test
thresholds: {mql: 50, sql: 100, hysteresis: 10}
engagement:
  half_life_days: 14
  pages: {pricing: 40, docs: 10}
"""


async def lookup(http: httpx.AsyncClient, key: str, **headers: str) -> httpx.Response:
    return await http.get(f"/v1/leads/{quote(key, safe='')}", headers=headers or AUTH)


async def looked_up(http: httpx.AsyncClient, key: str, stage: str) -> dict[str, Any]:
    """The lead ``key`` names, once its state shows ``stage`` (a transition is produced
    before the state is saved)."""
    found: dict[str, Any] = {}

    async def shows_stage() -> bool:
        response = await lookup(http, key)
        found.update(response.json() if response.status_code == 200 else {})
        return found.get("stage") == stage

    await wait_until(shows_stage, 30, f"the lookup of {key!r} to show {stage}")
    return found


@pytest.mark.parametrize("core", ["auto", "python"])
async def test_a_lead_is_found_by_user_id_anonymous_id_and_email(
    kafka_bootstrap: str, tmp_path: Path, core: str
) -> None:
    env, rules_file = await rules_worker_env(kafka_bootstrap, tmp_path, RULES)
    env |= {"BATON_ADMIN_TOKEN": TOKEN, "BATON_SCORER_CORE": core, "BATON_LOG_LEVEL": "INFO"}
    prefix = env["BATON_TOPIC_PREFIX"]
    worker = start_worker(env, tmp_path / "scorer.log")
    try:
        if core == "python":
            assert (await healthz(worker.url))["core"] == "python"
        now = datetime.now(UTC)
        anon = "anon-lookup-1"
        pricing: dict[str, Any] = {"page_category": "pricing"}
        await produce(
            kafka_bootstrap,
            f"{prefix}leads.events",
            [
                # A known user: a pricing view and a docs view (50 points) -> MQL.
                event("u1", "user-1", "page", now, user_id="user-1", **pricing),
                event("u2", "user-1", "page", now, user_id="user-1", page_category="docs"),
                # An anonymous visitor, later identified as user-2.
                event("a1", anon, "page", now, anonymous_id=anon, **pricing),
                event("a2", anon, "page", now, anonymous_id=anon, **pricing),
                event("i1", "user-2", "identify", now, anonymous_id=anon, user_id="user-2"),
                # A lead known only by its email address (as ingest keys email events).
                event("e1", "ada@example.com", "page", now, email="ada@example.com", **pricing),
                event("e2", "ada@example.com", "page", now, email="ada@example.com", **pricing),
            ],
        )
        transitions = f"{prefix}leads.transitions"
        mqls: dict[str, dict[str, Any]] = {}
        for lead in ("user-1", "user-2", "ada@example.com"):
            seen = await wait_for_record(
                kafka_bootstrap, transitions, lambda t, lead=lead: t["lead_id"] == lead, 60
            )
            mqls[lead] = seen[-1]
        version = load_rules(rules_file).version

        async with httpx.AsyncClient(base_url=worker.url) as http:
            user = await looked_up(http, "user-1", "mql")
            assert (user["lead_id"], user["matched_by"]) == ("user-1", "lead_id")
            assert user["score"] == pytest.approx(mqls["user-1"]["score"], abs=0.01)
            assert user["score"] == pytest.approx(50, abs=0.01)
            assert user["engagement"] == pytest.approx(user["score"] - user["fit"], abs=1e-5)
            assert [s["signal"] for s in user["signals"]] == ["page:pricing", "page:docs"]
            assert [s["points"] for s in user["signals"]] == pytest.approx([40, 10], abs=0.01)
            assert user["rules_version"] == version == mqls["user-1"]["rules_version"]
            assert user["recent_event_ids"] == ["u2", "u1"]
            assert user["merged_ids"] == [] and user["account"] is None
            assert abs(datetime.fromisoformat(user["last_event_at"]) - now).total_seconds() < 1e-3

            stitched = await looked_up(http, anon, "mql")
            assert (stitched["lead_id"], stitched["matched_by"]) == ("user-2", "anonymous_id")
            assert stitched["score"] == pytest.approx(mqls["user-2"]["score"], abs=0.01)
            assert stitched == {**(await looked_up(http, "user-2", "mql")), **_same(stitched)}

            by_email = await looked_up(http, " Ada@Example.COM", "mql")
            assert (by_email["lead_id"], by_email["matched_by"]) == ("ada@example.com", "email")
            assert by_email["email"] == "ada@example.com"
            assert by_email["score"] == pytest.approx(mqls["ada@example.com"]["score"], abs=0.01)

            unknown = await lookup(http, "nobody-at-all")
            assert unknown.status_code == 404
            assert unknown.headers["content-type"].startswith("application/problem+json")
            assert unknown.json()["status"] == 404
            unidentified = await lookup(http, "anon-never-identified")
            assert unidentified.status_code == 404

            for headers in ({"Authorization": "Bearer wrong-token-wrong"}, {"X-No": "auth"}):
                refused = await lookup(http, "user-1", **headers)
                assert refused.status_code == 401
                assert refused.headers["www-authenticate"] == "Bearer"
                assert "user-1" not in refused.text

            for bad, rule in [("", "missing"), ("x" * 321, "string_too_long"),
                              ("user\x001", "control_character")]:  # fmt: skip
                response = await lookup(http, bad)
                assert response.status_code == 422, bad
                assert response.json()["errors"][0] == {
                    "path": "path.key",
                    "rule": rule,
                    "message": response.json()["detail"],
                }
    finally:
        worker.stop()
    # A lookup logs nothing about what was looked up.
    log = (tmp_path / "scorer.log").read_text()
    for key in ("Ada@Example.COM", "nobody-at-all", "anon-never-identified", anon):
        assert key not in log


def _same(view: dict[str, Any]) -> dict[str, Any]:
    """The fields of a view that depend on how it was looked up, or on when."""
    return {k: view[k] for k in ("matched_by", "as_of", "score", "engagement", "signals")}


def partition_of(key: str, partitions: int = 3) -> int:
    """The partition Kafka's default partitioner gives ``key`` (as the producers do)."""
    return DefaultPartitioner()(key.encode(), list(range(partitions)), list(range(partitions)))


async def test_any_of_two_workers_answers_for_leads_the_other_owns(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env, _ = await rules_worker_env(kafka_bootstrap, tmp_path, RULES)
    env |= {"BATON_ADMIN_TOKEN": TOKEN}
    prefix = env["BATON_TOPIC_PREFIX"]
    pairs = [(f"anon-{i}", f"person-{i}") for i in range(8)]
    # Every partition holds some lead and some anonymous id: each worker owns some of
    # them and must ask the other for the rest (an anonymous id: two hops at most).
    assert {partition_of(user) for _, user in pairs} == {0, 1, 2}
    assert {partition_of(anon) for anon, _ in pairs} == {0, 1, 2}
    workers = [start_worker(env, tmp_path / f"scorer-{n}.log") for n in range(2)]
    try:
        now = datetime.now(UTC)
        records = []
        for anon, user in pairs:
            records += [
                event(f"{anon}-p", anon, "page", now, anonymous_id=anon, page_category="pricing"),
                event(f"{user}-d", user, "page", now, user_id=user, page_category="docs"),
                event(f"{user}-i", user, "identify", now, anonymous_id=anon, user_id=user),
            ]
        await produce(kafka_bootstrap, f"{prefix}leads.events", records)
        for worker in workers:
            async with httpx.AsyncClient(base_url=worker.url) as http:
                for anon, user in pairs:
                    by_user = await looked_up(http, user, "mql")
                    assert by_user["score"] == pytest.approx(50, abs=0.01)
                    by_anon = await looked_up(http, anon, "mql")
                    assert (by_anon["lead_id"], by_anon["matched_by"]) == (user, "anonymous_id")
                assert (await lookup(http, "user-unknown")).status_code == 404
                assert (
                    await lookup(http, "user-1", Authorization="Bearer nope")
                ).status_code == 401
    finally:
        for worker in workers:
            worker.stop()
