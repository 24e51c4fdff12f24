"""The ingest API against the real broker: a 2xx means the event is in leads.events."""

from __future__ import annotations

import asyncio
import gzip
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from baton_devstack.ports import free_port
from baton_ingest.api import create_app
from baton_ingest.config import IngestSettings
from baton_shared.schemas import EventType, LeadEvent, decode
from tests.support.kafka import read_all, wait_for_record

pytestmark = pytest.mark.integration

KEY = "test-write-key"


def settings_for(bootstrap: str, prefix: str, **extra: str) -> IngestSettings:
    return IngestSettings(
        **{  # type: ignore[arg-type]
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "BATON_TOPIC_PREFIX": prefix,
            "BATON_ENV": "test",
            "BATON_INGEST_WRITE_KEYS": f"{KEY},other-key",
            **extra,
        }
    )


async def client_for(
    settings: IngestSettings, ready: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            if ready:
                async with __import__("asyncio").timeout(30):
                    while (await client.get("/healthz")).status_code != 200:
                        await __import__("asyncio").sleep(0.1)
            yield client


@pytest.fixture
def prefix(unique_name: str) -> str:
    return f"{unique_name}."


@pytest.fixture
async def ingest(kafka_bootstrap: str, prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(settings_for(kafka_bootstrap, prefix)):
        yield client


async def test_track_is_acknowledged_and_lands_normalised_in_leads_events(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    # A client whose clock runs two hours fast; the event happened 30 s before sending.
    sent_at = datetime.now(UTC) + timedelta(hours=2)
    original = sent_at - timedelta(seconds=30)
    response = await ingest.post(
        "/v1/track",
        auth=(KEY, ""),
        json={
            "userId": 42,
            "event": "Pricing Viewed",
            "messageId": "m-1",
            "originalTimestamp": original.isoformat(),
            "sentAt": sent_at.isoformat(),
            "context": {
                "page": {"path": "/pricing/enterprise"},
                "library": {"name": "analytics-python"},
            },
        },
    )
    assert response.status_code == 200
    assert response.json() == {"success": True}

    records = await wait_for_record(
        kafka_bootstrap, f"{prefix}leads.events", lambda r: r["event_id"] == "m-1"
    )
    event = records[-1]
    assert event["lead_id"] == "42"
    assert event["name"] == "Pricing Viewed"
    assert event["page_category"] == "pricing"
    assert event["source"] == "segment"
    assert event["schema"] == 1
    skew_corrected = datetime.fromisoformat(event["occurred_at"])
    received = datetime.fromisoformat(event["received_at"])
    assert abs((received - skew_corrected).total_seconds() - 30) < 5  # skew removed


async def test_batch_accepts_valid_events_and_names_each_rejected_one(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    response = await ingest.post(
        "/v1/batch",
        auth=(KEY, ""),
        json={
            "batch": [
                {
                    "type": "identify",
                    "userId": "u-1",
                    "messageId": "b-1",
                    "traits": {"email": "Ada@Example.com"},
                },
                {"type": "track", "userId": "u-1", "messageId": "b-2"},
                {
                    "type": "page",
                    "anonymousId": "anon-1",
                    "messageId": "b-3",
                    "properties": {"path": "/blog/x"},
                },
                {"type": "track", "event": "Signed Up", "messageId": "b-4"},
            ]
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    assert body["rejected"] == [
        {"index": 1, "path": "batch.1.event", "message": "required for a track call"},
        {"index": 3, "path": "batch.3.userId", "message": "userId or anonymousId is required"},
    ]
    events = await read_all(kafka_bootstrap, f"{prefix}leads.events")
    assert sorted(e["event_id"] for e in events) == ["b-1", "b-3"]
    identify = next(e for e in events if e["event_id"] == "b-1")
    assert identify["email"] == "ada@example.com"


async def test_a_nul_character_is_refused_with_its_path_not_passed_downstream(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    """PostgreSQL (router, SLA monitor) cannot store a NUL: refused at the door, by path."""
    response = await ingest.post(
        "/v1/batch",
        auth=(KEY, ""),
        json={
            "batch": [
                {
                    "type": "identify",
                    "userId": "u-1",
                    "messageId": "n-1",
                    "traits": {"title": "CTO\x00", "email": "ada@example.com"},
                },
                {"type": "track", "userId": "u-1", "messageId": "n-2", "event": "Demo Requested"},
            ]
        },
    )
    assert response.status_code == 200
    assert response.json()["rejected"] == [
        {
            "index": 0,
            "path": "batch.0.traits.title",
            "message": "must not contain a NUL character (\\u0000)",
        },
    ]
    single = await ingest.post(
        "/v1/track",
        auth=(KEY, ""),
        json={"userId": "u-1", "messageId": "n-3", "event": "Clicked", "properties": {"x\x00": 1}},
    )
    assert single.status_code == 400
    assert single.json()["path"] == "properties.x\x00"
    events = await read_all(kafka_bootstrap, f"{prefix}leads.events")
    assert [e["event_id"] for e in events] == ["n-2"]


async def test_gzip_body_with_write_key_in_body_is_accepted(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    body = gzip.compress(
        orjson.dumps(
            {
                "writeKey": KEY,
                "batch": [
                    {
                        "type": "track",
                        "userId": "g-1",
                        "event": "Webinar Attended",
                        "messageId": "gz-1",
                    }
                ],
            }
        )
    )
    response = await ingest.post(
        "/v1/batch",
        content=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    await wait_for_record(
        kafka_bootstrap, f"{prefix}leads.events", lambda r: r["event_id"] == "gz-1"
    )


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"auth": ("wrong-key", ""), "json": {}}, 401, "unauthorized"),
        ({"json": {"userId": "x", "event": "e", "messageId": "m"}}, 401, "unauthorized"),
        (
            {
                "auth": (KEY, ""),
                "content": b"{not json",
                "headers": {"Content-Type": "application/json"},
            },
            400,
            "invalid_json",
        ),
        (
            {
                "auth": (KEY, ""),
                "content": b"\x1f\x8bnope",
                "headers": {"Content-Encoding": "gzip", "Content-Type": "application/json"},
            },
            400,
            "invalid_gzip",
        ),
        (
            {
                "auth": (KEY, ""),
                "content": b"a=b",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            415,
            "unsupported_media_type",
        ),
        (
            {
                "auth": (KEY, ""),
                "json": {
                    "userId": "x",
                    "event": "e",
                    "messageId": "m",
                    "properties": {"blob": "x" * 40_000},
                },
            },
            413,
            "payload_too_large",
        ),
        (
            {
                "auth": (KEY, ""),
                "json": {
                    "userId": "x",
                    "event": "e",
                    "messageId": "m",
                    "timestamp": "2999-01-01T00:00:00Z",
                },
            },
            400,
            "invalid_request",
        ),
        (
            {
                "auth": (KEY, ""),
                "json": {"userId": "x", "event": "e", "messageId": "m", "timestamp": "yesterday"},
            },
            400,
            "invalid_request",
        ),
    ],
    ids=[
        "unknown-key",
        "missing-key",
        "bad-json",
        "bad-gzip",
        "form-body",
        "too-large",
        "far-future",
        "bad-timestamp",
    ],
)
async def test_bad_requests_get_a_segment_style_error_and_store_nothing(
    ingest: httpx.AsyncClient,
    kafka_bootstrap: str,
    prefix: str,
    kwargs: dict,
    status: int,
    code: str,
) -> None:
    response = await ingest.post("/v1/track", **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.json()["message"]
    assert await read_all(kafka_bootstrap, f"{prefix}leads.events", idle_s=0.5) == []


async def test_kafka_unreachable_answers_503_with_retry_after_never_2xx(prefix: str) -> None:
    dead_broker = f"127.0.0.1:{free_port()}"
    settings = settings_for(dead_broker, prefix, BATON_INGEST_PRODUCE_TIMEOUT="2")
    async for client in client_for(settings, ready=False):
        health = await client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["checks"] == {"kafka": False}
        response = await client.post(
            "/v1/track",
            auth=(KEY, ""),
            json={"userId": "u", "event": "Demo Requested", "messageId": uuid.uuid4().hex},
        )
        assert response.status_code == 503
        assert response.headers["Retry-After"].isdigit()
        assert response.json()["code"] == "kafka_unavailable"


async def test_browser_preflight_and_send_beacon_text_plain_body_are_accepted(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    preflight = await ingest.options(
        "/v1/track",
        headers={
            "Origin": "https://www.acme.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] in ("*", "https://www.acme.example")

    beacon = orjson.dumps(
        {
            "writeKey": KEY,
            "anonymousId": "anon-b",
            "messageId": "beacon-1",
            "properties": {"path": "/demo"},
        }
    )
    response = await ingest.post(
        "/v1/page",
        content=beacon,
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://www.acme.example"},
    )
    assert response.status_code == 200, response.text
    assert "access-control-allow-origin" in response.headers
    events = await wait_for_record(
        kafka_bootstrap, f"{prefix}leads.events", lambda r: r["event_id"] == "beacon-1"
    )
    assert events[-1]["page_category"] == "demo"


async def test_write_key_over_its_rate_limit_gets_429_with_retry_after(
    kafka_bootstrap: str, prefix: str
) -> None:
    settings = settings_for(kafka_bootstrap, prefix, BATON_INGEST_RATE_LIMIT="5/minute")
    async for client in client_for(settings):
        batch = [
            {"type": "track", "userId": "r", "event": "e", "messageId": f"r-{i}"} for i in range(4)
        ]
        first = await client.post("/v1/batch", auth=(KEY, ""), json={"batch": batch})
        assert first.status_code == 200
        second = await client.post("/v1/batch", auth=(KEY, ""), json={"batch": batch})
        assert second.status_code == 429
        assert second.json()["code"] == "rate_limited"
        assert 1 <= int(second.headers["Retry-After"]) <= 60
        other_key = await client.post(
            "/v1/track",
            auth=("other-key", ""),
            json={"userId": "r", "event": "e", "messageId": "other-1"},
        )
        assert other_key.status_code == 200  # limits are per writeKey
    events = await read_all(kafka_bootstrap, f"{prefix}leads.events")
    assert sorted(e["event_id"] for e in events) == ["other-1", "r-0", "r-1", "r-2", "r-3"]


async def test_custom_page_rules_categorise_pages(kafka_bootstrap: str, prefix: str) -> None:
    settings = settings_for(
        kafka_bootstrap, prefix, BATON_INGEST_PAGE_RULES="/plans=pricing,/book-a-call=demo"
    )
    async for client in client_for(settings):
        for i, path in enumerate(("/plans/team", "/book-a-call", "/pricing")):
            response = await client.post(
                "/v1/page",
                auth=(KEY, ""),
                json={"userId": "p", "messageId": f"p-{i}", "properties": {"path": path}},
            )
            assert response.status_code == 200
    events = await read_all(kafka_bootstrap, f"{prefix}leads.events")
    assert [e["page_category"] for e in sorted(events, key=lambda e: e["event_id"])] == [
        "pricing",
        "demo",
        None,
    ]


async def raw_values(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[bytes]:
    """The first ``count`` record values on ``topic``, as published."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        async with asyncio.timeout(timeout):
            while len(values) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    values.extend(r.value for r in records if r.value is not None)
    finally:
        await consumer.stop()
    return values


async def test_what_is_published_decodes_as_the_shared_lead_event_schema(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    calls: list[dict[str, Any]] = [
        {
            "type": "track",
            "userId": 7,
            "event": "Pricing Viewed",
            "messageId": "w-1",
            "properties": {"plan": "team", "seats": 12, "ratio": 0.25, "tags": ["a", "ü"]},
            "context": {"page": {"url": "https://acme.example/pricing?utm_source=ads"}},
            "timestamp": "2026-11-23T10:00:00.5+02:00",
        },
        {
            "type": "identify",
            "anonymousId": "anon-w",
            "messageId": "w-2",
            "traits": {"email": " Ada@Example.com ", "title": "CTO"},
            "originalTimestamp": "2026-11-23T10:00:00Z",
        },
        {"type": "page", "userId": "u-w", "messageId": "w-3", "properties": {"path": "/docs/x"}},
        # Unusual but valid: a unix time and a field by its Python name (the model decides).
        {"type": "track", "user_id": "u-x", "event": "e", "messageId": "w-4", "timestamp": 1},
    ]
    response = await ingest.post(
        "/v1/batch", auth=(KEY, ""), json={"batch": calls, "sentAt": "2026-11-23T10:00:01Z"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 4

    values = await raw_values(kafka_bootstrap, f"{prefix}leads.events", 4)
    events = {e.event_id: e for e in (decode(LeadEvent, v) for v in values)}
    assert [events[i].to_bytes() for i in sorted(events)] == sorted(
        values, key=lambda v: orjson.loads(v)["event_id"]
    )
    track = events["w-1"]
    assert (track.lead_id, track.type, track.page_category) == ("7", EventType.TRACK, "pricing")
    assert track.occurred_at == datetime(2026, 11, 23, 8, 0, 0, 500_000, tzinfo=UTC)
    assert track.campaign == {"source": "ads"}
    assert track.properties == calls[0]["properties"]
    identify = events["w-2"]
    assert (identify.lead_id, identify.email) == ("ada@example.com", "ada@example.com")
    assert identify.traits == {"email": " Ada@Example.com ", "title": "CTO"}
    assert events["w-3"].page_category == "docs"
    assert events["w-4"].user_id == "u-x"
    assert events["w-4"].occurred_at == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
