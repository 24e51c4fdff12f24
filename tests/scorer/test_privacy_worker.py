"""Privacy mode on a real worker (real Kafka and PostgreSQL).

Sealed events (as ingest seals them) score to the transitions the clear events give
the reference core; no topic the worker reads or writes, its changelogs included,
holds an email, name or id in clear; and an erasure asked by the email of a lead that
merged an email lead and stitched an anonymous id destroys every linked key, removes
every state (the lookup answers 404 by each id), is resolved with all the ids, while
another lead keeps its state and key. Without privacy mode an erasure still deletes
the states of a merged lead and records the scorer's step.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from baton_scorer import core, step
from baton_scorer.config import ScorerSettings
from baton_scorer.rules import parse_rules
from baton_shared.erasure_steps import open_keys
from baton_shared.privacy import KeyStore, open_transition, pseudonym, seal_event
from baton_shared.schemas import LeadErasure, LeadEvent
from tests.scorer.worker import event, produce, rules_worker_env, start_worker, wait_until
from tests.support.kafka import wait_for_record

pytestmark = pytest.mark.integration

TOKEN = "privacy-test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RULES = """
name: privacy-test
thresholds: {mql: 50, sql: 100, hysteresis: 10}
engagement:
  half_life_days: 14
  pages: {pricing: 40, docs: 10}
fit:
  title: {"\\\\b(vp|chief)\\\\b": 20}
  email_domains: {points: {acme.example: 15}}
"""
ADA, ADA_EMAIL, ADA_ANON, ADA_NAME = "user-ada", "ada@acme.example", "anon-ada-7", "Ada Lovelace"
BOB, BOB_EMAIL, BOB_NAME = "user-bob", "bob@acme.example", "Bob Stranger"
IP = "203.0.113.77"
CLEAR = [ADA, ADA_EMAIL, ADA_ANON, ADA_NAME, BOB, BOB_EMAIL, BOB_NAME, IP]


def people(now: datetime) -> tuple[list[LeadEvent], list[LeadEvent]]:
    """Before and after Ada identifies herself: Bob (one lead, MQL then SQL), an email
    lead of Ada's (MQL), her anonymous visits; then her identify, which stitches them
    and merges the email lead into her user id."""
    page = {"ip": IP, "user_agent": "Mozilla/5.0"}
    bob_traits = {"name": BOB_NAME, "title": "VP Sales"}
    before = [
        event("b1", BOB, "identify", now, user_id=BOB, email=BOB_EMAIL, traits=bob_traits),
        event("b2", BOB, "page", now, user_id=BOB, page_category="pricing", **page),
        event("b3", BOB, "page", now, user_id=BOB, page_category="pricing", **page),
        event("e1", ADA_EMAIL, "page", now, email=ADA_EMAIL, page_category="pricing"),
        event("e2", ADA_EMAIL, "page", now, email=ADA_EMAIL, page_category="docs"),
        event("a1", ADA_ANON, "page", now, anonymous_id=ADA_ANON, page_category="pricing"),
    ]
    ada_traits = {"name": ADA_NAME, "title": "Chief Scientist", "email": ADA_EMAIL}
    later = now + timedelta(seconds=1)
    after = [
        event(
            "i1",
            ADA,
            "identify",
            later,
            user_id=ADA,
            anonymous_id=ADA_ANON,
            email=ADA_EMAIL,
            traits=ada_traits,
            **page,
        ),
    ]
    return before, after


def sealed(
    events: list[LeadEvent], id_key: bytes, keys: dict[str, bytes]
) -> list[tuple[str, bytes]]:
    out = []
    for e in events:
        record = seal_event(e.model_dump(mode="json", by_alias=True), id_key, keys.__getitem__)
        out.append((record["lead_id"], orjson.dumps(record)))
    return out


def reference(events: list[LeadEvent], id_key: bytes) -> dict[str, dict[str, Any]]:
    """The transitions the scoring core gives the clear events of one lead each
    (ids as pseudonyms, as the worker keys them), by transition id."""
    rules = parse_rules(RULES)
    states: dict[str, Any] = {}
    renamed = [
        (
            step.Source.STITCHED,
            e.model_copy(update={"lead_id": pseudonym(id_key, e.lead_id)}).to_bytes(),
        )
        for e in events
    ]
    scored = step.score_batch(renamed, lambda k: states.setdefault(k, core.new_state()), rules)
    return {t.transition_id: t.model_dump(mode="json") for t in scored.transitions}


async def all_records(
    bootstrap: str, prefix: str
) -> dict[str, list[tuple[bytes | None, bytes | None]]]:
    """Every record of every topic of this deployment, as raw bytes."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: dict[str, list[tuple[bytes | None, bytes | None]]] = {t: [] for t in topics}
    try:
        tps = [
            TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        async with asyncio.timeout(30):
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                    out[tp.topic] += [(r.key, r.value) for r in records]
    finally:
        await consumer.stop()
    return out


async def test_sealed_scoring_and_erasure_of_a_merged_lead(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    env, _ = await rules_worker_env(kafka_bootstrap, tmp_path, RULES)
    env |= {
        "BATON_ADMIN_TOKEN": TOKEN,
        "BATON_PRIVACY_KEY": f"privacy-test-{uuid.uuid4().hex}",
        "BATON_PRIVACY_KEY_CACHE_SECONDS": "0",
        "DATABASE_URL": database_url,
    }
    prefix = env["BATON_TOPIC_PREFIX"]
    settings = ScorerSettings.model_validate(env)
    id_key = settings.privacy_keys.id_key
    p = {raw: pseudonym(id_key, raw) for raw in (ADA, ADA_EMAIL, ADA_ANON, BOB)}
    keystore = await KeyStore.open(settings)
    worker = start_worker(env, tmp_path / "scorer.log")
    try:
        keys = await keystore.keys(p.values(), create=True)
        now = datetime.now(UTC).replace(microsecond=0)
        before, after = people(now)
        transitions = f"{prefix}leads.transitions"
        await produce(kafka_bootstrap, f"{prefix}leads.events", sealed(before, id_key, keys))
        expected = reference([e for e in before if e.lead_id in (BOB, ADA_EMAIL)], id_key)
        assert {t["to_stage"] for t in expected.values()} == {"mql", "sql"}
        got_ids: set[str] = set()

        def all_expected(t: dict[str, Any]) -> bool:
            got_ids.add(t["transition_id"])
            return set(expected) <= got_ids

        seen = await wait_for_record(kafka_bootstrap, transitions, all_expected, 60)
        by_id = {t["transition_id"]: t for t in seen}
        for transition_id, want in expected.items():
            got = by_id[transition_id]
            assert got["sealed"] and got["email"] is None and got["traits"] == {}
            opened = open_transition(got, keys[got["lead_id"]])
            for field in ("lead_id", "to_stage", "score", "fit", "reason", "email", "traits"):
                assert opened[field] == want[field], field

        await produce(kafka_bootstrap, f"{prefix}leads.events", sealed(after, id_key, keys))
        async with httpx.AsyncClient(base_url=worker.url, headers=AUTH) as http:

            async def ada_is_sql() -> bool:
                r = await http.get(f"/v1/leads/{ADA}")
                return r.status_code == 200 and r.json()["stage"] == "sql"

            await wait_until(ada_is_sql, 60, "Ada's merged lead to be SQL")
            ada = (await http.get(f"/v1/leads/{quote(ADA_EMAIL.upper())}")).json()
            # 2 pricing views and a docs view, the title and the email's domain.
            assert ada["score"] == pytest.approx(40 + 40 + 10 + 20 + 15, abs=0.01)
            assert ada["lead_id"] == p[ADA] and ada["email"] == ADA_EMAIL
            assert p[ADA_EMAIL] in ada["merged_ids"]
            assert (await http.get(f"/v1/leads/{ADA_ANON}")).json()["lead_id"] == p[ADA]

            everything = await all_records(kafka_bootstrap, prefix)
            for topic, records in everything.items():
                for key, value in records:
                    raw = (key or b"") + (value or b"")
                    leaked = [c for c in CLEAR if c.encode() in raw or c.upper().encode() in raw]
                    assert not leaked, (topic, leaked)

            erasure = await keystore.record_erasure([p[ADA_EMAIL]], "privacy-test")
            request = LeadErasure(
                erasure_id=erasure.erasure_id,
                stage="requested",
                subjects=[p[ADA_EMAIL]],
                requested_at=datetime.now(UTC),
            )
            await produce(
                kafka_bootstrap, f"{prefix}leads.erasures", [(p[ADA_EMAIL], request.to_bytes())]
            )
            resolved = await wait_for_record(
                kafka_bootstrap, f"{prefix}leads.erasures", lambda r: r["stage"] == "resolved", 60
            )
            linked = set(resolved[-1]["lead_ids"])
            assert {p[ADA], p[ADA_EMAIL], p[ADA_ANON]} <= linked and p[BOB] not in linked

            async def all_gone() -> bool:
                codes = [
                    (await http.get(f"/v1/leads/{quote(k)}")).status_code
                    for k in (ADA, ADA_EMAIL, ADA_ANON, p[ADA], p[ADA_EMAIL])
                ]
                return codes == [404] * 5

            await wait_until(all_gone, 30, "every id of Ada to answer 404")
            # Delivered again: nothing left to destroy or delete, resolved again.
            await produce(
                kafka_bootstrap, f"{prefix}leads.erasures", [(p[ADA_EMAIL], request.to_bytes())]
            )
            resolutions: list[dict[str, Any]] = []

            def second_resolution(r: dict[str, Any]) -> bool:
                resolutions.extend([r] if r["stage"] == "resolved" else [])
                return len(resolutions) == 2

            await wait_for_record(kafka_bootstrap, f"{prefix}leads.erasures", second_resolution, 60)
            assert p[ADA_EMAIL] in resolutions[1]["lead_ids"]
            bob = (await http.get(f"/v1/leads/{BOB}")).json()
            assert bob["stage"] == "sql" and bob["email"] == BOB_EMAIL
        conn = await asyncpg.connect(database_url)
        try:
            kept = await conn.fetch(
                "SELECT subject FROM privacy.data_keys WHERE subject = ANY($1::text[])",
                list(p.values()),
            )
        finally:
            await conn.close()
        assert {r["subject"] for r in kept} == {p[BOB]}
        done = await keystore.erasure(erasure.erasure_id)
        assert done is not None and "scorer" in done.steps
        changelog = (await all_records(kafka_bootstrap, prefix))[
            f"{prefix}baton-scorer-leads-changelog"
        ]
        last = {k: v for k, v in changelog}
        assert last[p[ADA].encode()] is None and last[p[ADA_EMAIL].encode()] is None
        assert last[p[BOB].encode()] is not None
    finally:
        worker.kill()
        await keystore.close()


async def test_without_privacy_mode_an_erasure_deletes_every_state_of_a_merged_lead(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    env, _ = await rules_worker_env(kafka_bootstrap, tmp_path, RULES)
    env |= {"BATON_ADMIN_TOKEN": TOKEN, "DATABASE_URL": database_url}
    prefix = env["BATON_TOPIC_PREFIX"]
    keystore = await open_keys(ScorerSettings.model_validate(env))  # erasure records only
    worker = start_worker(env, tmp_path / "scorer.log")
    try:
        now = datetime.now(UTC)
        pricing = {"page_category": "pricing"}
        await produce(
            kafka_bootstrap,
            f"{prefix}leads.events",
            [
                event("e1", ADA_EMAIL, "page", now, email=ADA_EMAIL, **pricing),
                event("i1", ADA, "identify", now, user_id=ADA, email=ADA_EMAIL),
                event("b1", BOB, "page", now, user_id=BOB, **pricing),
            ],
        )
        async with httpx.AsyncClient(base_url=worker.url, headers=AUTH) as http:

            async def merged() -> bool:
                r = await http.get(f"/v1/leads/{quote(ADA_EMAIL)}")
                return r.status_code == 200 and r.json()["lead_id"] == ADA

            await wait_until(merged, 60, "the email lead merged into Ada's")
            erasure = await keystore.record_erasure([ADA_EMAIL], "privacy-test")
            request = LeadErasure(
                erasure_id=erasure.erasure_id,
                stage="requested",
                subjects=[ADA_EMAIL],
                requested_at=datetime.now(UTC),
            )
            await produce(
                kafka_bootstrap, f"{prefix}leads.erasures", [(ADA_EMAIL, request.to_bytes())]
            )
            resolved = await wait_for_record(
                kafka_bootstrap, f"{prefix}leads.erasures", lambda r: r["stage"] == "resolved", 60
            )
            assert set(resolved[-1]["lead_ids"]) == {ADA, ADA_EMAIL}

            async def gone() -> bool:
                codes = [
                    (await http.get(f"/v1/leads/{quote(k)}")).status_code for k in (ADA, ADA_EMAIL)
                ]
                return codes == [404, 404]

            await wait_until(gone, 30, "both of Ada's ids to answer 404")
            assert (await http.get(f"/v1/leads/{BOB}")).json()["lead_id"] == BOB
        done = await keystore.erasure(erasure.erasure_id)
        assert done is not None and "scorer" in done.steps
    finally:
        worker.kill()
        await keystore.close()
