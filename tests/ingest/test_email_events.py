"""Email engagement into leads.events: Baton's generic schema and SendGrid's webhook."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.ingest.test_ingest_api import KEY, client_for, settings_for
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration

SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_KEY_B64 = base64.b64encode(
    SIGNING_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


def sendgrid_headers(body: bytes, timestamp: str | None = None) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    signature = SIGNING_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


@pytest.fixture
def prefix(unique_name: str) -> str:
    return f"{unique_name}."


@pytest.fixture
async def ingest(kafka_bootstrap: str, prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(
        kafka_bootstrap, prefix, BATON_INGEST_SENDGRID_VERIFICATION_KEY=PUBLIC_KEY_B64
    )
    async for client in client_for(settings):
        yield client


SENDGRID_EVENTS = [
    {
        "email": "Ada@Example.com",
        "timestamp": 1700000000,
        "event": kind,
        "sg_event_id": f"sg-{kind}",
        "sg_message_id": "msg-1",
        "category": ["launch"],
        **(
            {"url": "https://acme.example/pricing?utm_source=newsletter"} if kind == "click" else {}
        ),
    }
    for kind in (
        "processed",
        "delivered",
        "deferred",
        "bounce",
        "dropped",
        "open",
        "click",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
        "group_resubscribe",
    )
]


async def test_sendgrid_webhook_with_valid_signature_maps_every_event_type(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    body = orjson.dumps(SENDGRID_EVENTS)
    response = await ingest.post("/v1/email/sendgrid", content=body, headers=sendgrid_headers(body))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(SENDGRID_EVENTS)

    events = {e["event_id"]: e for e in await read_all(kafka_bootstrap, f"{prefix}leads.events")}
    assert {k: v["name"] for k, v in events.items()} == {
        "sg-processed": "Email Processed",
        "sg-delivered": "Email Delivered",
        "sg-deferred": "Email Deferred",
        "sg-bounce": "Email Bounced",
        "sg-dropped": "Email Dropped",
        "sg-open": "Email Opened",
        "sg-click": "Email Clicked",
        "sg-spamreport": "Email Marked as Spam",
        "sg-unsubscribe": "Unsubscribed",
        "sg-group_unsubscribe": "Unsubscribed",
        "sg-group_resubscribe": "Resubscribed",
    }
    click = events["sg-click"]
    assert click["lead_id"] == "ada@example.com" and click["source"] == "sendgrid"
    assert click["campaign"] == {"source": "newsletter"}
    assert click["occurred_at"].startswith("2023-11-14T22:13:20")


async def test_sendgrid_webhook_with_bad_signature_is_401_and_stores_nothing(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    body = orjson.dumps(SENDGRID_EVENTS[:1])
    headers = sendgrid_headers(b"something else")
    response = await ingest.post("/v1/email/sendgrid", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert await read_all(kafka_bootstrap, f"{prefix}leads.events", idle_s=0.5) == []


async def test_a_sendgrid_signature_older_than_five_minutes_is_refused(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    body = orjson.dumps(SENDGRID_EVENTS[:1])
    stale = sendgrid_headers(body, str(int(time.time()) - 301))
    response = await ingest.post("/v1/email/sendgrid", content=body, headers=stale)
    assert response.status_code == 401
    assert "over 300 s old" in response.json()["message"]
    assert await read_all(kafka_bootstrap, f"{prefix}leads.events", idle_s=0.5) == []


async def test_a_malformed_sendgrid_event_is_rejected_on_its_own(
    ingest: httpx.AsyncClient,
) -> None:
    """An object where the event name belongs, a timestamp past year 9999: each is listed
    as rejected (never a 500), and the valid event beside them is stored."""
    body = orjson.dumps(
        [
            {**SENDGRID_EVENTS[5], "event": {}, "sg_event_id": "sg-a"},
            {**SENDGRID_EVENTS[5], "timestamp": 1e300, "sg_event_id": "sg-b"},
            SENDGRID_EVENTS[5],
        ]
    )
    response = await ingest.post("/v1/email/sendgrid", content=body, headers=sendgrid_headers(body))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 1
    assert [(r["index"], r["path"]) for r in answer["rejected"]] == [
        (0, "0.event"),
        (1, "1.timestamp"),
    ]


async def test_sendgrid_redelivery_is_marked_possible_duplicate(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    body = orjson.dumps(SENDGRID_EVENTS[5:6])
    for _ in range(2):
        response = await ingest.post(
            "/v1/email/sendgrid", content=body, headers=sendgrid_headers(body)
        )
        assert response.status_code == 200
    events = await read_all(kafka_bootstrap, f"{prefix}leads.events")
    assert [(e["event_id"], e["possible_duplicate"]) for e in events] == [
        ("sg-open", False),
        ("sg-open", True),
    ]


async def test_generic_email_events_are_decided_per_event(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    response = await ingest.post(
        "/v1/email/events",
        auth=(KEY, ""),
        json={
            "events": [
                {
                    "id": "e-1",
                    "email": "grace@example.com",
                    "type": "reply",
                    "timestamp": "2026-01-05T10:00:00Z",
                    "campaign": "nurture-1",
                },
                {
                    "id": "e-2",
                    "email": "not-an-email",
                    "type": "open",
                    "timestamp": "2026-01-05T10:00:00Z",
                },
                {
                    "id": "e-3",
                    "email": "grace@example.com",
                    "type": "teleport",
                    "timestamp": "2026-01-05T10:00:00Z",
                },
            ]
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["path"]) for r in body["rejected"]] == [(1, "1.email"), (2, "2.type")]
    events = await read_all(kafka_bootstrap, f"{prefix}leads.events")
    assert [(e["event_id"], e["name"], e["lead_id"]) for e in events] == [
        ("e-1", "Email Replied", "grace@example.com")
    ]
    assert events[0]["properties"]["campaign"] == "nurture-1"


async def test_generic_email_events_need_a_write_key(ingest: httpx.AsyncClient) -> None:
    response = await ingest.post("/v1/email/events", json={"events": []})
    assert response.status_code == 401
