"""Ingest's express lane and its overload answer, against the real broker: over
capacity a bulk request gets 503 + Retry-After at once while a demo request is still
stored, on leads.express as well as leads.events; nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from tests.ingest.test_ingest_api import KEY, client_for, prefix, settings_for
from tests.support.kafka import read_all, wait_for_record

pytestmark = pytest.mark.integration
__all__ = ["prefix"]  # the fixture


def page_views(n: int) -> list[dict[str, Any]]:
    return [
        {"type": "page", "userId": f"bulk-{i}", "messageId": uuid.uuid4().hex,
         "properties": {"path": "/blog/a"}}
        for i in range(n)
    ]  # fmt: skip


async def test_over_capacity_bulk_gets_503_with_retry_after_and_a_demo_request_is_stored(
    kafka_bootstrap: str, prefix: str
) -> None:
    # One bulk request's events waiting for Kafka fill the bound: the others that
    # arrive meanwhile are over capacity.
    settings = settings_for(
        kafka_bootstrap, prefix, BATON_INGEST_MAX_PENDING_EVENTS="1",
        BATON_INGEST_OVERLOAD_RETRY_AFTER="2",
    )  # fmt: skip
    demo = {"userId": "demo-lead", "event": "Demo Requested", "messageId": "demo-1"}
    async for client in client_for(settings):
        batches = [page_views(50) for _ in range(12)]
        answers = await asyncio.gather(
            *(client.post("/v1/batch", auth=(KEY, ""), json={"batch": b}) for b in batches),
            client.post("/v1/track", auth=(KEY, ""), json=demo),
        )
        *bulk, express = answers
        assert express.status_code == 200, express.text
        refused = [a for a in bulk if a.status_code == 503]
        accepted = [b for b, a in zip(batches, bulk, strict=True) if a.status_code == 200]
        assert refused and accepted, [a.status_code for a in bulk]
        assert len(refused) + len(accepted) == len(bulk)
        for answer in refused:
            assert answer.headers["Retry-After"] == "2"
            assert answer.json()["code"] == "overloaded"

    express_copies = await wait_for_record(
        kafka_bootstrap, f"{prefix}leads.express", lambda r: r["event_id"] == "demo-1"
    )
    assert [r["event_id"] for r in express_copies] == ["demo-1"]
    stored = {r["event_id"] for r in await read_all(kafka_bootstrap, f"{prefix}leads.events")}
    acknowledged = {call["messageId"] for batch in accepted for call in batch}
    assert stored == acknowledged | {"demo-1"}  # every acknowledged event, nothing refused


async def test_while_the_event_loop_lags_bulk_gets_503_and_a_demo_request_is_stored(
    kafka_bootstrap: str, prefix: str
) -> None:
    settings = settings_for(kafka_bootstrap, prefix, BATON_INGEST_MAX_LOOP_LAG_SECONDS="0.01")
    demo = {"userId": "demo-lead", "event": "Demo Requested", "messageId": "demo-2"}
    async for client in client_for(settings):
        # The process cannot keep up: a callback holds its event loop for half a second,
        # and the loop's timers (ingest's lag watch among them) fire that much late.
        asyncio.get_running_loop().call_soon(time.sleep, 0.5)
        await asyncio.sleep(0.1)
        bulk = await client.post("/v1/batch", auth=(KEY, ""), json={"batch": page_views(5)})
        express = await client.post("/v1/track", auth=(KEY, ""), json=demo)
        assert bulk.status_code == 503, bulk.text
        assert bulk.json()["code"] == "overloaded"
        assert bulk.headers["Retry-After"] == "1"
        assert express.status_code == 200, express.text
