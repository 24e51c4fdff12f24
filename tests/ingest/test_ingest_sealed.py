"""Privacy mode at ingest: what reaches ``leads.events`` holds no personal data in clear,
opens back with the lead's data key, and opens to nothing once the key is destroyed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from baton_devstack.ports import free_port
from baton_ingest.config import IngestSettings
from baton_shared.kafka_connection import client_options
from baton_shared.privacy import KeyStore, open_event, pseudonym
from baton_shared.schemas import LeadEvent
from tests.ingest.test_ingest_api import KEY, client_for, settings_for

pytestmark = pytest.mark.integration

MASTER_KEY = "ingest-privacy-master-key-for-tests"
EMAIL, NAME, IP, USER = "grace@example.com", "Grace Hopper", "203.0.113.77", "user-grace-1"
CLEAR = (EMAIL, NAME, IP, USER, "anon-grace-1", "Grace/1.0")


def privacy_settings(kafka_bootstrap: str, prefix: str, database_url: str) -> IngestSettings:
    return settings_for(
        kafka_bootstrap, prefix, BATON_PRIVACY_KEY=MASTER_KEY, DATABASE_URL=database_url
    )


async def stored(bootstrap: str, topic: str, event_id: str) -> tuple[bytes, bytes]:
    """The key and value of the record of ``event_id`` on ``topic``."""
    consumer = AIOKafkaConsumer(
        topic, **client_options(bootstrap), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            while True:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for r in records:
                        if orjson.loads(r.value)["event_id"] == event_id:
                            return r.key, r.value
    finally:
        await consumer.stop()


async def test_a_page_call_is_stored_sealed_and_is_unreadable_once_erased(
    kafka_bootstrap: str, unique_name: str, database_url: str
) -> None:
    prefix = f"{unique_name}."
    settings = privacy_settings(kafka_bootstrap, prefix, database_url)
    async for ingest in client_for(settings):
        response = await ingest.post(
            "/v1/page",
            auth=(KEY, ""),
            json={
                "userId": USER,
                "anonymousId": "anon-grace-1",
                "name": "Pricing",
                "messageId": f"{unique_name}-page",
                "timestamp": datetime.now(UTC).isoformat(),
                "properties": {"url": f"https://acme.io/pricing?email={EMAIL}"},
                "context": {
                    "ip": IP,
                    "userAgent": "Grace/1.0",
                    "traits": {"email": EMAIL, "name": NAME},
                },
            },
        )
        assert response.status_code == 200, response.text
    key, value = await stored(kafka_bootstrap, f"{prefix}leads.events", f"{unique_name}-page")
    for clear in CLEAR:
        assert clear.encode() not in key and clear.encode() not in value
    subject = pseudonym(settings.privacy_keys.id_key, USER)  # type: ignore[union-attr]
    assert key == subject.encode()
    record = LeadEvent.model_validate_json(value).model_dump(by_alias=True, mode="json")
    assert record["page_category"] == "pricing" and record["sealed"]

    store = await KeyStore.open(settings)
    try:
        key_before = (await store.keys([subject], create=False))[subject]
        opened = open_event(record, key_before, clear_ids=True)
        assert (opened["email"], opened["ip"], opened["user_id"]) == (EMAIL, IP, USER)
        assert opened["traits"]["name"] == NAME and EMAIL in opened["page"]["url"]

        assert await store.destroy([subject]) == 1
        key_after = (await store.keys([subject], create=False)).get(subject)
        assert key_after is None
        erased = open_event(record, key_after, clear_ids=True)
        for clear in CLEAR:
            assert clear not in str(erased)
    finally:
        await store.close()


async def test_without_its_key_store_ingest_refuses_events_rather_than_store_them_clear(
    kafka_bootstrap: str, unique_name: str
) -> None:
    nowhere = f"postgresql://baton@127.0.0.1:{free_port()}/baton"
    settings = privacy_settings(kafka_bootstrap, f"{unique_name}.", nowhere)
    async for ingest in client_for(settings, ready=False):
        response = await ingest.post(
            "/v1/track",
            auth=(KEY, ""),
            json={"userId": USER, "event": "Signed Up", "messageId": f"{unique_name}-t"},
        )
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "privacy_keys_unavailable"
        assert response.headers["Retry-After"] == str(settings.retry_after_seconds)
        ready = await ingest.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["privacy_keys"] is False
