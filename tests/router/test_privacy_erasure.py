"""Erasure in the router and the SLA monitor (real Kafka and PostgreSQL): the
``/v1/privacy`` contract; in privacy mode a sealed transition still reaches the rep with
the lead's email; a ``resolved`` erasure scrubs an assigned lead's rows in both services
(and the reporting store) and leaves another lead alone; the erasure completes when the
three steps are done."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from standardwebhooks.webhooks import Webhook

from baton_devstack.webhook_sink import WebhookReceiver
from baton_shared.clock import utcnow
from baton_shared.erasure_steps import open_keys
from baton_shared.privacy.events import seal_transition
from baton_shared.privacy.keystore import KeyStore
from baton_shared.privacy.pseudonyms import pseudonym
from baton_shared.schemas import LeadErasure
from baton_sla_monitor.config import SlaSettings
from baton_sla_monitor.service import SlaService
from tests.router.test_router_api import Api, running_api, transition
from tests.support.kafka import wait_for_record
from tests.support.waiting import wait_until
from tests.support.webhooks import next_delivery

pytestmark = pytest.mark.integration

PRIVACY_KEY = "router-erasure-privacy-key-0123456789"
SCHEMAS = ("router", "sla", "reporting")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


async def test_erase_endpoint_contract(kafka_bootstrap, pg_cluster, unique_name) -> None:
    async with running_api(kafka_bootstrap, pg_cluster, unique_name) as api:
        body = {"email": " Ada.Erase@Example.com ", "requested_by": "ticket-1"}
        missing = await api.call("POST", "/v1/privacy/erase", json={"requested_by": "t"})
        unknown = await api.call("POST", "/v1/privacy/erase", json={**body, "phone": "1"})
        no_who = await api.call("POST", "/v1/privacy/erase", json={"email": "a@b.c"})
        anonymous = await api.client.post("/v1/privacy/erase", json=body)
        for response, path, words in (
            (missing, "body", "user_id, email, anonymous_id, lead_id"),
            (unknown, "body.phone", ""),
            (no_who, "body.requested_by", ""),
        ):
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"
            [error] = response.json()["errors"]
            assert error["path"] == path and words in error["message"], error
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"

        accepted = await api.call("POST", "/v1/privacy/erase", json=body, expect=202)
        erasure_id = accepted.json()["erasure_id"]
        assert accepted.json()["status_url"] == f"/v1/privacy/erasures/{erasure_id}"
        status = (await api.call("GET", accepted.json()["status_url"], expect=200)).json()
        assert status["requested_by"] == "ticket-1"
        assert status["subjects"] == ["ada.erase@example.com"]  # privacy off: the id itself
        assert status["topics"] == "not sealed"
        assert status["steps"] == {"scorer": None, "router": None, "sla-monitor": None}
        assert (status["status"], status["completed_at"]) == ("in_progress", None)
        await wait_for_record(
            kafka_bootstrap,
            api.topics.erasures,
            lambda r: r["erasure_id"] == erasure_id and r["stage"] == "requested",
            timeout=15,
        )
        await api.call("GET", f"/v1/privacy/erasures/{uuid.uuid4()}", expect=404)
        anonymous_get = await api.client.get(accepted.json()["status_url"])
        assert anonymous_get.status_code == 401


@pytest.fixture
async def stack(kafka_bootstrap, pg_cluster, unique_name) -> AsyncIterator[tuple[Api, SlaService]]:
    """A router and an SLA monitor in privacy mode on one database and set of topics."""
    async with running_api(
        kafka_bootstrap, pg_cluster, unique_name, BATON_PRIVACY_KEY=PRIVACY_KEY
    ) as api:
        settings = api.service.settings
        monitor = SlaService(
            SlaSettings(**{
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "DATABASE_URL": settings.database_url,
                "BATON_TOPIC_PREFIX": f"{unique_name}.",
                "BATON_ENV": "test",
                "BATON_PRIVACY_KEY": PRIVACY_KEY,
                "BATON_SLA_TICK_SECONDS": "0.05",
            })
        )  # fmt: skip
        await monitor.start()
        try:
            yield api, monitor
        finally:
            await monitor.stop()


async def dump(api: Api) -> list[str]:
    """Every row of the router's, SLA monitor's and reporting tables, as text."""
    tables = await api.query(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema = ANY(:schemas) AND table_type = 'BASE TABLE'",
        schemas=list(SCHEMAS),
    )
    rows = []
    for schema, table in tables:
        found = await api.query(f'SELECT t::text FROM "{schema}"."{table}" t')
        rows += [f"{schema}.{table}: {row}" for (row,) in found]
    return rows


@pytest.fixture
async def keys(stack: tuple[Api, SlaService]) -> AsyncIterator[KeyStore]:
    keys = await open_keys(stack[0].service.settings)
    try:
        yield keys
    finally:
        await keys.close()


async def send(producer: AIOKafkaProducer, topic: str, value: bytes, key: str) -> None:
    await producer.send_and_wait(topic, value, key=key.encode())


async def send_sealed(
    api: Api, producer: AIOKafkaProducer, keys: KeyStore, user_id: str, email: str
) -> str:
    """An SQL transition of ``user_id``'s lead, sealed as the scorer seals it; its lead id."""
    lead_id = pseudonym(api.service.settings.privacy_keys.id_key, user_id)
    record = transition(lead_id, email=email, traits={"name": user_id, "industry": "Software"})
    found = await keys.keys([lead_id], create=True)
    sealed = seal_transition(record.model_dump(mode="json", by_alias=True), found[lead_id])
    assert email not in orjson.dumps(sealed).decode()
    await send(producer, api.topics.transitions, orjson.dumps(sealed), lead_id)
    return lead_id


async def test_sealed_transitions_reach_the_rep_and_erasure_scrubs_one_lead(
    stack: tuple[Api, SlaService],
    keys: KeyStore,
    producer: AIOKafkaProducer,
    receiver: WebhookReceiver,
) -> None:
    api, _ = stack
    rep = await api.rep(receiver)
    verify = Webhook(rep["webhook_secret"]).verify
    erased_email, kept_email = "hedy@example.com", "grace@example.com"
    erased = await send_sealed(api, producer, keys, "usr-hedy", erased_email)
    first = verify(*_delivery(await next_delivery(receiver)))
    kept = await send_sealed(api, producer, keys, "usr-grace", kept_email)
    second = verify(*_delivery(await next_delivery(receiver)))
    leads = {p["data"]["lead"]["lead_id"]: p["data"]["lead"] for p in (first, second)}
    assert leads[erased]["email"] == erased_email  # opened from the sealed field
    assert leads[kept]["traits"] == {"name": "usr-grace", "industry": "Software"}

    async def clocks_and_journeys() -> bool:
        clocks = await api.query("SELECT DISTINCT lead_id FROM sla.clocks")
        journeys = await api.query(  # industry: the reporting feed opened the traits
            "SELECT lead_id FROM reporting.journeys "
            "WHERE assigned_at IS NOT NULL AND industry = 'software'"
        )
        both = {erased, kept}
        return {c for (c,) in clocks} >= both and {j for (j,) in journeys} >= both

    await wait_until(clocks_and_journeys, "both leads' SLA clocks and journeys", 20)
    before = "\n".join(await dump(api))
    assert erased_email in before and erased in before

    accepted = await api.call(
        "POST", "/v1/privacy/erase", json={"user_id": "usr-hedy", "requested_by": "dpo-7"},
        expect=202,
    )  # fmt: skip
    erasure_id = accepted.json()["erasure_id"]
    shredded = "SELECT subject FROM privacy.data_keys WHERE subject = :s"
    assert await api.query(shredded, s=erased) == []  # the key is destroyed at once
    assert await api.query(shredded, s=kept) == [(kept,)]
    resolved = LeadErasure(
        erasure_id=erasure_id,
        stage="resolved",
        subjects=[erased],
        lead_ids=[erased],
        requested_at=utcnow(),
    )  # what the scorer publishes once it resolved the person's leads
    for _ in range(2):  # a repeat changes nothing
        await send(producer, api.topics.erasures, resolved.to_bytes(), erased)

    async def services_done() -> dict | None:
        status = (await api.call("GET", accepted.json()["status_url"], expect=200)).json()
        steps = status["steps"]
        return status if steps["router"] and steps["sla-monitor"] else None

    status = await wait_until(services_done, "the router's and SLA monitor's steps", 20)
    assert (status["status"], status["topics"]) == ("in_progress", "sealed")
    await keys.finish_step(erasure_id, "scorer")
    status = (await api.call("GET", accepted.json()["status_url"], expect=200)).json()
    assert status["status"] == "completed" and status["completed_at"] is not None

    taken_back = verify(*_delivery(await next_delivery(receiver)))
    assert taken_back["type"] == "lead.taken_back"
    assert taken_back["data"]["reason"] == "lead_erased"
    assert taken_back["data"]["lead_id"].startswith("erased_")

    after = await dump(api)
    text_after = "\n".join(after)
    assert erased_email not in text_after and erased not in text_after
    assert "usr-hedy" not in text_after
    assert kept_email in text_after  # the other lead's routed transition and webhook
    kept_rows = [row for row in after if kept in row]
    for table in ("router.assignments", "sla.clocks", "reporting.journeys"):
        assert any(row.startswith(table) for row in kept_rows), table
    statuses = await api.query(
        "SELECT a.status, c.status FROM router.assignments a "
        "JOIN sla.clocks c ON c.assignment_id = CAST(a.id AS text) "
        "WHERE a.lead_id LIKE 'erased\\_%' AND c.measure = 'first_touch'"
    )
    assert statuses == [("erased", "cancelled")]
    open_leads = await api.query("SELECT open_leads FROM router.reps")
    assert open_leads == [(1,)]  # the erased lead no longer counts against capacity


def _delivery(delivery: Any) -> tuple[bytes, dict[str, str]]:
    return delivery.body, delivery.headers
