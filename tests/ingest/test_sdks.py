"""The official SDKs, unmodified, pointed at ingest: what they send arrives normalised."""

from __future__ import annotations

import asyncio

import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from baton_devstack.services import ServiceProcess
from tests.ingest.conftest import WRITE_KEY
from tests.support.kafka import wait_for_record

pytestmark = pytest.mark.integration

PAGE_URL = "https://acme.example/pricing?utm_source=google&utm_medium=cpc&utm_campaign=q4"


def send_calls(client: SegmentClient | RudderClient, user_id: str) -> None:
    client.identify(user_id, {"email": "Ada@Example.com", "title": "VP Sales"})
    client.track(user_id, "Demo Requested", {"plan": "enterprise"})
    client.page(user_id, name="Pricing", properties={"url": PAGE_URL, "path": "/pricing"})
    client.shutdown()  # flush the queue and wait for the uploads


@pytest.mark.parametrize(
    ("client_class", "source"),
    [(SegmentClient, "segment"), (RudderClient, "rudderstack")],
    ids=["segment-analytics-python", "rudder-sdk-python"],
)
def test_sdk_identify_track_and_page_arrive_normalised(
    ingest_process: ServiceProcess, kafka_bootstrap: str, client_class: type, source: str
) -> None:
    errors: list[Exception] = []
    client = client_class(
        write_key=WRITE_KEY,
        host=ingest_process.url,
        gzip=True,
        max_retries=1,
        on_error=lambda exc, batch: errors.append(exc),
    )
    user_id = f"{source}-user"
    send_calls(client, user_id)
    assert errors == []

    topic = f"{ingest_process.env['BATON_TOPIC_PREFIX']}leads.events"
    events = asyncio.run(wait_for_record(kafka_bootstrap, topic, lambda r: r["type"] == "page"))
    by_type = {e["type"]: e for e in events}
    assert set(by_type) == {"identify", "track", "page"}
    assert all(e["source"] == source and e["lead_id"] == user_id for e in events)
    assert by_type["identify"]["email"] == "ada@example.com"
    assert by_type["identify"]["traits"]["title"] == "VP Sales"
    assert by_type["track"]["name"] == "Demo Requested"
    assert by_type["track"]["properties"] == {"plan": "enterprise"}
    page = by_type["page"]
    assert page["name"] == "Pricing"
    assert page["page_category"] == "pricing"
    assert page["page"]["url"] == PAGE_URL
    assert page["campaign"] == {"source": "google", "medium": "cpc", "name": "q4"}
    assert len({e["event_id"] for e in events}) == 3
