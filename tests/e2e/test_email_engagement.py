"""Email engagement moves a lead: SendGrid's Event Webhook → ingest → leads.events → scorer
→ leads.transitions, with the shipped rules, four service processes, real Kafka and
PostgreSQL (the stack of the walking skeleton)."""

from __future__ import annotations

import time
import uuid

import httpx
import orjson
import pytest

from tests.e2e.test_walking_skeleton import WRITE_KEY, Stack, http, stack  # noqa: F401
from tests.support.kafka import wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CLICK_POINTS = 8  # Email Clicked in default_rules.yaml; MQL at 50


async def test_sendgrid_clicks_for_a_known_leads_address_make_it_mql(
    stack: Stack,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    address = f"reader-{uuid.uuid4().hex[:8]}@acme.example"
    # The lead: a visitor who gave their address in a form (ingest keys it by the address,
    # as it keys email events).
    response = await http.post(
        f"{stack.url('ingest')}/v1/identify",
        json={
            "anonymousId": f"anon-{uuid.uuid4().hex[:8]}",
            "traits": {"email": address},
            "messageId": uuid.uuid4().hex,
        },
        auth=(WRITE_KEY, ""),
    )
    assert response.status_code == 200, response.text

    # Seven clicks, as SendGrid posts them (the address as the provider spells it).
    now = int(time.time())
    clicks = [
        {
            "email": address.replace("reader", "Reader"),
            "event": "click",
            "sg_event_id": f"sg-{uuid.uuid4().hex}",
            "sg_message_id": "msg-launch",
            "timestamp": now - 10 + i,
            "url": "https://acme.example/pricing?utm_source=newsletter",
        }
        for i in range(7)
    ]
    assert 6 * CLICK_POINTS < 50 <= 7 * CLICK_POINTS
    response = await http.post(
        f"{stack.url('ingest')}/v1/email/sendgrid",
        content=orjson.dumps(clicks),
        headers={"Content-Type": "application/json"},
        auth=(WRITE_KEY, ""),
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 7

    transitions = await wait_for_record(
        stack.bootstrap,
        f"{stack.prefix}leads.transitions",
        lambda r: r["lead_id"] == address and r["to_stage"] == "mql",
    )
    mql = [t for t in transitions if t["lead_id"] == address]
    assert len(mql) == 1 and mql[0]["from_stage"] == "new"
    assert mql[0]["trigger_event"] == "Email Clicked"
    assert mql[0]["trigger_event_id"] == clicks[-1]["sg_event_id"]  # the seventh crosses 50
    assert mql[0]["score"] >= 50 and mql[0]["email"] == address
    assert [s["signal"] for s in mql[0]["top_signals"]] == ["event:Email Clicked"]
