"""Replay is exact: production-like traffic through ingest and the scorer (as processes),
then ``baton replay`` of ``leads.events`` with the same rules file gives the transitions
on ``leads.transitions`` — ids, stages, scores and event times.

The traffic is what trackers send: anonymous browsing that an identify later links to a
user (through the scorer's identity repartition), server-side tracks, email engagement,
late events with old timestamps, re-sent duplicates, and reps rejecting SQLs; then two
known leads merged into a third (an identify carrying the address email events were
keyed by, an alias), with events keyed by the old ids before and after.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from baton_analytics.cli import main
from baton_analytics.commands import Target, _feed
from baton_analytics.ranges import ReadRange
from baton_analytics.replay import Replay, ReplayResult
from baton_devstack.ports import free_port
from baton_devstack.services import ServiceProcess, start_services, stop_services
from baton_scorer.app import internal_topics
from baton_scorer.config import ScorerSettings
from baton_scorer.rules import load_rules
from baton_shared.kafka import durable_producer
from baton_shared.schemas import Activity, ActivityKind, ReasonKind, Transition
from baton_shared.topics import Topics
from tests.support.kafka import read_all

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

WRITE_KEY = "exactness-write-key"
ADMIN_TOKEN = "exactness-admin-token"
PAGES = ["/pricing", "/product", "/blog/post", "/docs/start", "/careers", "/pricing/enterprise"]
TRACKS = ["Webinar Attended", "Case Study Downloaded", "Email Opened", "Newsletter Subscribed"]
COMPARED = (
    "transition_id",
    "lead_id",
    "from_stage",
    "to_stage",
    "score",
    "fit",
    "engagement",
    "reason",
    "trigger_event_id",
    "occurred_at",
    "rules_version",
)


class Pipeline:
    def __init__(
        self, ingest_url: str, scorer_url: str, topics: Topics, bootstrap: str, rules: Path
    ) -> None:
        self.ingest_url = ingest_url
        self.scorer_url = scorer_url
        self.topics = topics
        self.bootstrap = bootstrap
        self.rules = rules


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    name = f"exact{uuid.uuid4().hex[:8]}"
    workdir = tmp_path_factory.mktemp(name)
    rules = workdir / "rules.yaml"  # a copy: both sides score with the very same file
    shutil.copyfile(str(files("baton_scorer").joinpath("default_rules.yaml")), rules)
    env = {
        "BATON_ENV": "test",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "BATON_TOPIC_PREFIX": f"{name}.",
        "BATON_INGEST_WRITE_KEYS": WRITE_KEY,
        "BATON_SCORER_DATA_DIR": str(workdir / "scorer"),
        "BATON_SCORER_RULES_FILE": str(rules),
        "BATON_LOG_FORMAT": "console",
        "BATON_INGEST_ACCESS_LOG": "false",
        "BATON_ADMIN_TOKEN": ADMIN_TOKEN,
        # Replay sees one log. The express lane scores a demo request ahead of its lead's
        # bulk events still waiting to be read, an order no log records (docs/analytics.md).
        "BATON_INGEST_EXPRESS_EVENTS": "",
    }
    ports = {"ingest": free_port(), "scorer": free_port()}
    services: list[ServiceProcess] = start_services(
        env, workdir / "logs", ports, only=("ingest", "scorer")
    )
    try:
        url = {s.spec.name: s.url for s in services}
        yield Pipeline(url["ingest"], url["scorer"], Topics(f"{name}."), kafka_bootstrap, rules)
    finally:
        stop_services(services)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def browsing(rng: random.Random, now: datetime, n_leads: int) -> list[dict[str, Any]]:
    """Anonymous page views, some with timestamps hours or days in the past (late)."""
    calls = []
    for i in range(n_leads):
        for _ in range(rng.randint(2, 5)):
            age = timedelta(hours=rng.choice([0, 0, 0, 3, 30, 200]), seconds=rng.randint(0, 600))
            calls.append(
                {
                    "type": "page",
                    "anonymousId": f"anon-{i}",
                    "messageId": uuid.uuid4().hex,
                    "timestamp": _iso(now - age),
                    "properties": {"path": rng.choice(PAGES)},
                }
            )
    return calls


def identified(rng: random.Random, now: datetime, n_leads: int) -> list[dict[str, Any]]:
    """Each browser identifies (with traits), then acts as the known user."""
    calls = []
    for i in range(n_leads):
        base = {"anonymousId": f"anon-{i}", "userId": f"user-{i}"}
        title = rng.choice(["VP Sales", "Marketing Manager", "Student", "Engineer"])
        calls.append(
            {
                **base,
                "type": "identify",
                "messageId": uuid.uuid4().hex,
                "timestamp": _iso(now),
                "traits": {
                    "email": f"user-{i}@corp{i % 4}.example",
                    "title": title,
                    "employees": rng.choice([5, 200, 5000]),
                },
            }
        )
        for _ in range(rng.randint(1, 5)):
            name = "Demo Requested" if rng.random() < 0.08 else rng.choice(TRACKS)
            calls.append(
                {
                    **base,
                    "type": "track",
                    "event": name,
                    "messageId": uuid.uuid4().hex,
                    "timestamp": _iso(now - timedelta(minutes=rng.randint(0, 90))),
                }
            )
    return calls


def server_side(rng: random.Random, now: datetime, n_leads: int) -> list[dict[str, Any]]:
    """Backend tracks keyed by user id only (no browser, no anonymous id)."""
    calls = []
    for i in range(n_leads):
        for _ in range(rng.randint(2, 6)):
            name = rng.choice([*TRACKS, "Trial Started", "Unsubscribed", "Email Clicked"])
            calls.append(
                {
                    "type": "track",
                    "userId": f"server-{i}",
                    "event": name,
                    "messageId": uuid.uuid4().hex,
                    "timestamp": _iso(now - timedelta(hours=rng.randint(0, 72))),
                }
            )
    for i in range(4):  # SQL forty days ago, then silence: recycled in event time
        for name, age in (
            ("Demo Requested", timedelta(days=40)),
            ("Webinar Attended", timedelta(0)),
        ):
            calls.append(
                {
                    "type": "track",
                    "userId": f"returning-{i}",
                    "event": name,
                    "messageId": uuid.uuid4().hex,
                    "timestamp": _iso(now - timedelta(seconds=i) - age),
                }
            )
    return calls


async def post_batches(
    http: httpx.AsyncClient, url: str, calls: list[dict[str, Any]], rng: random.Random
) -> int:
    """POST in batches of 50; re-send about 5% of calls (same messageId) as duplicates."""
    calls = calls + [c for c in calls if rng.random() < 0.05]
    for start in range(0, len(calls), 50):
        response = await http.post(
            f"{url}/v1/batch", json={"batch": calls[start : start + 50]}, auth=(WRITE_KEY, "")
        )
        assert response.status_code == 200, response.text
        assert not response.json().get("rejected"), response.text
    return len(calls)


async def post_email(
    http: httpx.AsyncClient, url: str, now: datetime, n: int, address: str = "reader-{}"
) -> None:
    events = [
        {
            "id": uuid.uuid4().hex,
            "email": f"{address.format(i % n)}@mail.example",
            "type": kind,
            "timestamp": int((now - timedelta(minutes=i)).timestamp()),
        }
        for i, kind in enumerate(["open", "click", "open", "open", "click"] * n)
    ]
    response = await http.post(
        f"{url}/v1/email/events", json={"events": events}, auth=(WRITE_KEY, "")
    )
    assert response.status_code in (200, 202), response.text


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        parts = [TopicPartition(topic, p) for p in cluster.partitions_for_topic(topic) or ()]
        return dict(await consumer.end_offsets(parts)) if parts else {}
    finally:
        await consumer.stop()


async def wait_until_consumed(
    bootstrap: str, group: str, topics: list[str], timeout: float = 60.0
) -> None:
    """Until the scorer's group has committed every record of ``topics`` (checked in flow
    order, so what an upstream topic's records produced downstream is counted too)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(timeout):
            while True:
                committed = await admin.list_consumer_group_offsets(group)
                caught_up = True
                for topic in topics:
                    for tp, end in (await end_offsets(bootstrap, topic)).items():
                        meta = committed.get(tp)
                        if end > 0 and (meta is None or meta.offset < end):
                            caught_up = False
                if caught_up:
                    return
                await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def wait_for_identity_records(bootstrap: str, topic: str, count: int) -> None:
    async with asyncio.timeout(30):
        while sum((await end_offsets(bootstrap, topic)).values()) < count:
            await asyncio.sleep(0.2)


async def publish(bootstrap: str, topic: str, records: list[Activity]) -> None:
    producer = durable_producer(bootstrap)
    await producer.start()
    try:
        for r in records:
            await producer.send_and_wait(topic, r.to_bytes(), key=r.lead_id.encode())
    finally:
        await producer.stop()


def comparable(t: dict[str, Any] | Transition) -> tuple[Any, ...]:
    record = t if isinstance(t, Transition) else Transition.model_validate(t)
    return tuple(getattr(record, name) for name in COMPARED)


async def test_replay_reproduces_the_live_scorers_transitions(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    rng = random.Random(20261123)
    now = datetime.now(UTC).replace(microsecond=0)
    settings = ScorerSettings(BATON_TOPIC_PREFIX=pipeline.topics.prefix)
    identity_topic, stitched_topic = internal_topics(settings)
    browsers, servers = 40, 20
    async with httpx.AsyncClient(timeout=15) as http:
        # A visitor browses before identifying: wait until the scorer has taken the
        # anonymous views (they are on its identity topic) before the identifies come.
        sent = await post_batches(http, pipeline.ingest_url, browsing(rng, now, browsers), rng)
        await wait_for_identity_records(pipeline.bootstrap, identity_topic, sent)
        await post_batches(http, pipeline.ingest_url, identified(rng, now, browsers), rng)
        await post_batches(http, pipeline.ingest_url, server_side(rng, now, servers), rng)
        await post_email(http, pipeline.ingest_url, now, 8)
    t = pipeline.topics
    group = settings.topics.group("baton-scorer")
    await wait_until_consumed(pipeline.bootstrap, group, [t.events, identity_topic, stitched_topic])
    # Reps reject a few SQLs (as the router API publishes it): back to nurture.
    stage_now = {
        r["lead_id"]: r["to_stage"]
        for r in await read_all(pipeline.bootstrap, t.transitions, 0.5)  # per lead in order
    }
    sqls = sorted(lead for lead, stage in stage_now.items() if stage == "sql")
    rejections = [
        Activity(
            activity_id=f"rej-{lead}",
            lead_id=lead,
            rep_id="rep-1",
            kind=ActivityKind.REJECTED,
            reason="no budget",
            occurred_at=datetime.now(UTC),
        )
        for lead in sqls[:3]
    ]
    await publish(pipeline.bootstrap, t.activity, rejections)
    await wait_until_consumed(pipeline.bootstrap, group, [t.activity])

    replayed = await replay_matches_live(pipeline, tmp_path)
    assert len(replayed) >= 20, "the traffic should qualify a good number of leads"
    assert {r.to_stage.value for r in replayed} >= {"mql", "sql", "recycled"}
    assert sum(r.reason_kind == ReasonKind.REJECTION for r in replayed) == 3


async def replay_matches_live(pipeline: Pipeline, tmp_path: Path) -> list[Transition]:
    """``baton replay`` of the whole log, checked equal to ``leads.transitions``."""
    t = pipeline.topics
    out = tmp_path / "replayed.jsonl"
    code = await asyncio.to_thread(
        main,
        [
            "replay",
            "--rules",
            str(pipeline.rules),
            "-o",
            str(out),
            "--bootstrap",
            pipeline.bootstrap,
            "--prefix",
            t.prefix,
        ],
    )
    assert code == 0
    replayed = [Transition.model_validate_json(x) for x in out.read_text().splitlines()]
    expected_ids = {r.transition_id for r in replayed}

    # Timer-fired transitions (recycles) come from the scorer's wall-clock tick: wait for
    # every replayed id to be on the topic, then compare the whole topic exactly.
    live: dict[str, dict[str, Any]] = {}
    try:
        async with asyncio.timeout(30):
            while not expected_ids <= live.keys():
                records = await read_all(pipeline.bootstrap, t.transitions, 0.5)
                live = {r["transition_id"]: r for r in records}
    except TimeoutError:
        pass  # the comparison below shows what differs
    assert sorted(map(comparable, live.values())) == sorted(map(comparable, replayed))
    return replayed


def calls_of(user_id: str, at: datetime, *calls: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"userId": user_id, "messageId": uuid.uuid4().hex, "timestamp": _iso(at), **call}
        for call in calls
    ]


async def test_replay_merges_identities_as_the_live_scorer_does(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    rng = random.Random(20261207)
    now = datetime.now(UTC).replace(microsecond=0)
    reader, old, user = "m-reader@mail.example", "m-old", "m-user"
    settings = ScorerSettings(BATON_TOPIC_PREFIX=pipeline.topics.prefix)
    t = pipeline.topics
    group = settings.topics.group("baton-scorer")
    consumed = [t.events, *internal_topics(settings)]
    pricing = {"type": "page", "properties": {"path": "/pricing"}}
    docs = {"type": "page", "properties": {"path": "/docs/start"}}
    webinar = {"type": "track", "event": "Webinar Attended"}
    identify = {"type": "identify", "traits": {"email": "M-Reader@Mail.example"}}
    minutes = [now - timedelta(minutes=m) for m in (40, 20, 19, 5)]
    steps = [
        # Before: email engagement keyed by the address, an old id's server-side history
        # (MQL on its own), the user browsing the docs.
        calls_of(old, minutes[0], pricing, webinar) + calls_of(user, minutes[0], docs),
        # The user identifies with the address (as typed), then aliases the old id.
        calls_of(user, minutes[1], identify),
        calls_of(user, minutes[2], {"type": "alias", "previousId": old}),
        # After: the old id asks for a demo (SQL, as the user's lead).
        calls_of(old, minutes[3], {"type": "track", "event": "Demo Requested"}),
    ]
    async with httpx.AsyncClient(timeout=15) as http:
        await post_email(http, pipeline.ingest_url, now - timedelta(minutes=30), 1, "m-reader")
        for calls in steps:  # each step taken by the scorer (merges included) before the next
            await post_batches(http, pipeline.ingest_url, calls, rng)
            await wait_until_consumed(pipeline.bootstrap, group, consumed)
        await post_email(http, pipeline.ingest_url, now, 1, "m-reader")
        await wait_until_consumed(pipeline.bootstrap, group, consumed)
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        views = [
            (await http.get(f"{pipeline.scorer_url}/v1/leads/{key}", headers=auth)).json()
            for key in (reader, old, user)
        ]
    # The live scorer made one lead, found by every id.
    assert {v["lead_id"] for v in views} == {user}
    assert set(views[2]["merged_ids"]) >= {reader, old}

    replayed = await replay_matches_live(pipeline, tmp_path)
    mine = [r for r in replayed if r.lead_id in (reader, old, user)]
    merge = next(r for r in mine if r.trigger_event_id == f"merge:{old}")
    assert merge.lead_id == user and merge.to_stage.value == "mql"
    assert merge.reason.startswith(f"lead {old} merged into {user}: ")
    assert {r.lead_id for r in mine if r.occurred_at >= merge.occurred_at} == {user}
    assert mine[-1].to_stage.value == views[2]["stage"] == "sql"

    # Replay's leads: the survivor alone, with the live score at the same moment.
    as_of = datetime.fromisoformat(views[2]["as_of"])
    result = await replay_result(pipeline, as_of)
    assert result.merged[reader] == result.merged[old] == user
    assert reader not in result.final_scores and old not in result.final_scores
    assert result.final_scores[user] == pytest.approx(views[2]["score"], abs=1e-3)


async def replay_result(pipeline: Pipeline, end: datetime) -> ReplayResult:
    """What ``baton replay`` computes over the whole log, its leads' scores at ``end``."""
    replay = Replay(load_rules(pipeline.rules))
    target = Target(pipeline.bootstrap, pipeline.topics.prefix)
    await _feed(target, ReadRange(until=datetime.now(UTC)), [replay], None)
    return replay.finish(end.timestamp())
