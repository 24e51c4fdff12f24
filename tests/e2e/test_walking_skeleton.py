"""One real lead travels the whole way: four service processes, real Kafka, real PostgreSQL.

ingest ← tracker POST → leads.events → scorer → leads.transitions → router →
signed webhook to the rep + leads.assignments → sla-monitor → leads.sla.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from baton_devstack.ports import free_port
from baton_devstack.services import SERVICES, ServiceProcess, start_services, stop_services
from baton_devstack.webhook_sink import WebhookReceiver
from tests.support.kafka import wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ADMIN = "e2e-admin-token-0123456789"
WRITE_KEY = "e2e-write-key"
EXPRESS_SLA_SECONDS = 3
SQL_SLA_SECONDS = 120
# One policy file for the router and the SLA monitor. The express window is the routing
# pool's (team) override, not the default: the rep must be told the team's deadline.
SLA_POLICY = f"""
name: e2e
first_touch_seconds: {{express_sql: 3600, sql: {SQL_SLA_SECONDS}, mql: 86400}}
teams:
  default:
    first_touch_seconds: {{express_sql: {EXPRESS_SLA_SECONDS}}}
"""


class Stack:
    def __init__(self, services: list[ServiceProcess], prefix: str, bootstrap: str):
        self.by_name = {s.spec.name: s for s in services}
        self.prefix = prefix
        self.bootstrap = bootstrap

    def url(self, name: str) -> str:
        return self.by_name[name].url


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, pg_cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    name = f"e2e{uuid.uuid4().hex[:8]}"
    workdir: Path = tmp_path_factory.mktemp(name)
    policy = workdir / "sla-policy.yaml"
    policy.write_text(SLA_POLICY)
    env = {
        "BATON_ENV": "test",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": pg_cluster.create_database(name),
        "BATON_TOPIC_PREFIX": f"{name}.",
        "BATON_ADMIN_TOKEN": ADMIN,
        "BATON_INGEST_WRITE_KEYS": WRITE_KEY,
        "BATON_SLA_POLICY_FILE": str(policy),
        "BATON_SCORER_DATA_DIR": str(workdir / "scorer"),
        "BATON_LOG_FORMAT": "console",
    }
    ports = {spec.name: free_port() for spec in SERVICES}
    services = start_services(env, workdir / "logs", ports)
    try:
        yield Stack(services, f"{name}.", kafka_bootstrap)
    finally:
        stop_services(services)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def create_rep(http: httpx.AsyncClient, stack: Stack, webhook_url: str) -> dict:
    response = await http.post(
        f"{stack.url('router')}/v1/reps",
        json={"name": "Ada Lovelace", "email": "ada@example.com", "webhook_url": webhook_url},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert response.status_code == 201, response.text
    rep = response.json()
    assert rep["webhook_secret"].startswith("whsec_")
    return rep


async def track(http: httpx.AsyncClient, stack: Stack, lead_id: str, event: str, **extra) -> None:
    response = await http.post(
        f"{stack.url('ingest')}/v1/track",
        json={"userId": lead_id, "event": event, "messageId": uuid.uuid4().hex, **extra},
        auth=(WRITE_KEY, ""),
    )
    assert response.status_code == 200, response.text


async def page(http: httpx.AsyncClient, stack: Stack, lead_id: str, path: str) -> None:
    response = await http.post(
        f"{stack.url('ingest')}/v1/page",
        json={"userId": lead_id, "messageId": uuid.uuid4().hex, "properties": {"path": path}},
        auth=(WRITE_KEY, ""),
    )
    assert response.status_code == 200, response.text


def first_touch(record: dict, lead_id: str) -> bool:
    """The rep's clock for the lead (``leads.sla`` also carries the pipeline's assign clock)."""
    return record["lead_id"] == lead_id and record["measure"] == "first_touch"


def next_delivery(receiver: WebhookReceiver, timeout: float):
    return receiver.deliveries.get(timeout=timeout)


async def test_demo_request_reaches_rep_signed_within_5s_and_breaches_without_contact(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    lead_id = f"lead-{uuid.uuid4().hex[:8]}"
    with WebhookReceiver() as receiver:
        rep = await create_rep(http, stack, f"{receiver.url}/hooks/ada")
        posted_at = time.monotonic()
        await track(http, stack, lead_id, "Demo Requested")
        delivery = await asyncio.to_thread(next_delivery, receiver, 5.0)
        elapsed = time.monotonic() - posted_at

    assert elapsed < 5.0
    payload = Webhook(rep["webhook_secret"]).verify(delivery.body, delivery.headers)
    assert payload["type"] == "lead.assigned"
    assert payload["data"]["lead_id"] == lead_id
    assert payload["data"]["rep_id"] == rep["id"]
    assert payload["data"]["express"] is True
    assert delivery.headers["webhook-id"].startswith("msg_")

    assignments = await wait_for_record(
        stack.bootstrap, f"{stack.prefix}leads.assignments", lambda r: r["lead_id"] == lead_id
    )
    assert assignments[-1]["rep_id"] == rep["id"]

    sla = await wait_for_record(
        stack.bootstrap,
        f"{stack.prefix}leads.sla",
        lambda r: first_touch(r, lead_id) and r["status"] == "breached",
        timeout=EXPRESS_SLA_SECONDS + 20,
    )
    statuses = [r["status"] for r in sla if first_touch(r, lead_id)]
    assert statuses[0] == "started" and statuses[-1] == "breached"
    # The due time the rep was told is the deadline the SLA monitor's clock fired at.
    started = next(r for r in sla if first_touch(r, lead_id) and r["status"] == "started")
    told = datetime.fromisoformat(payload["data"]["sla_due_at"])
    assert told == datetime.fromisoformat(started["deadline_at"])
    assigned_at = datetime.fromisoformat(payload["data"]["assigned_at"])
    assert told - assigned_at == timedelta(seconds=EXPRESS_SLA_SECONDS)
    assert set(statuses[1:-1]) <= {"at_risk"}  # warnings before the deadline
    # The pipeline's own clock (transition -> assignment) was met: the delay is the rep's.
    assigned = [r["status"] for r in sla if r["lead_id"] == lead_id and r["measure"] == "assign"]
    assert assigned[-1] == "met"


async def test_contacted_activity_stops_the_clock_as_met(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    lead_id = f"lead-{uuid.uuid4().hex[:8]}"
    with WebhookReceiver() as receiver:
        rep = await create_rep(http, stack, f"{receiver.url}/hooks/grace")
        # Three pricing visits (40 points each) cross the SQL threshold of 100: a normal,
        # non-express SQL with the long SLA window.
        for _ in range(3):
            await page(http, stack, lead_id, "/pricing")
        delivery = await asyncio.to_thread(next_delivery, receiver, 15.0)
    payload = Webhook(rep["webhook_secret"]).verify(delivery.body, delivery.headers)
    assert payload["data"]["lead_id"] == lead_id
    assert payload["data"]["express"] is False

    await wait_for_record(
        stack.bootstrap,
        f"{stack.prefix}leads.sla",
        lambda r: first_touch(r, lead_id) and r["status"] == "started",
    )
    response = await http.post(
        f"{stack.url('router')}/v1/leads/{lead_id}/activity",
        json={"kind": "contacted"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert response.status_code == 202, response.text

    sla = await wait_for_record(
        stack.bootstrap,
        f"{stack.prefix}leads.sla",
        lambda r: first_touch(r, lead_id) and r["status"] in ("met", "breached"),
    )
    final = [r for r in sla if first_touch(r, lead_id)][-1]
    assert final["status"] == "met"
    assert final["rep_id"] == rep["id"]
    assert 0 <= final["elapsed_seconds"] < SQL_SLA_SECONDS

    clocks = await http.get(
        f"{stack.url('sla-monitor')}/v1/leads/{lead_id}/clocks",
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    # The MQL clock (opened at the second pricing visit) was superseded when the lead went
    # SQL; the pipeline met its time-to-assign, and the rep's first touch was in time.
    assert sorted((c["measure"], c["stage"], c["status"]) for c in clocks.json()["items"]) == [
        ("assign", "sql", "met"),
        ("first_touch", "mql", "superseded"),
        ("first_touch", "sql", "met"),
    ]
    transitions = await wait_for_record(
        stack.bootstrap,
        f"{stack.prefix}leads.transitions",
        lambda r: r["lead_id"] == lead_id and r["to_stage"] == "sql",
    )
    sql = [t for t in transitions if t["lead_id"] == lead_id]
    assert sql[-1]["to_stage"] == "sql" and sql[-1]["score"] >= 100
    assert orjson.loads(delivery.body)["data"]["transition_id"] == sql[-1]["transition_id"]
