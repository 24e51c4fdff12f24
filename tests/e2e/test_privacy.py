"""Personal data and access across the four service processes (real Kafka and PostgreSQL).

One person's traffic (their email as userId, their name, their device's IP, sent from
its own client address) goes ingest → scorer → router → SLA monitor and is looked up
on every API; no service's log holds any of it. Each service refuses a client address
after too many failed authentications, while another client carries on; and the
scorer does not serve faust's debug pages.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from baton_devstack.ports import free_port
from baton_devstack.services import SERVICES, ServiceProcess, start_services, stop_services
from baton_devstack.webhook_sink import WebhookReceiver
from tests.support.kafka import wait_for_record
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ADMIN = "privacy-admin-token-0123456789"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
WRITE_KEY = "privacy-write-key"
MAX_FAILURES = 3
NAME = "Grace Hopper"
DEVICE_IP = "203.0.113.77"
CALLER_ADDRESS = "127.0.0.77"  # the person's own client address, as ingest sees it
REP_NAME = "Katherine Johnson"


@dataclass
class Stack:
    services: dict[str, ServiceProcess]
    prefix: str
    bootstrap: str
    email: str
    rep_email: str

    def url(self, name: str) -> str:
        return self.services[name].url

    def logs(self) -> dict[str, str]:
        return {name: s.log_path.read_text(errors="replace") for name, s in self.services.items()}


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, pg_cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    name = f"priv{uuid.uuid4().hex[:8]}"
    workdir: Path = tmp_path_factory.mktemp(name)
    env = {
        "BATON_ENV": "test",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": pg_cluster.create_database(name),
        "BATON_TOPIC_PREFIX": f"{name}.",
        "BATON_ADMIN_TOKEN": ADMIN,
        "BATON_INGEST_WRITE_KEYS": WRITE_KEY,
        "BATON_SCORER_DATA_DIR": str(workdir / "scorer"),
        "BATON_AUTH_MAX_FAILURES": str(MAX_FAILURES),
        "BATON_LOG_FORMAT": "console",
    }
    ports = {spec.name: free_port() for spec in SERVICES}
    services = start_services(env, workdir / "logs", ports)
    try:
        yield Stack(
            {s.spec.name: s for s in services},
            f"{name}.",
            kafka_bootstrap,
            email=f"grace.hopper.{name}@example.com",
            rep_email=f"katherine.johnson.{name}@example.com",
        )
    finally:
        stop_services(services)


def client(address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(transport=transport, timeout=10)


def answered(response: httpx.Response) -> bool:
    """200; or, from the scorer, the 503 of a worker still learning which worker owns
    the key (after a start under load, until its next rebalance): authenticated, served."""
    if response.status_code == 503:
        return response.json()["detail"].startswith("the key's owner is not known yet")
    return response.status_code == 200


@pytest.fixture(scope="module")
async def person(stack: Stack) -> AsyncIterator[str]:
    """The person's traffic, through to a started SLA clock; their email (the lead id)."""
    email = stack.email
    async with client() as admin, client(CALLER_ADDRESS) as browser:
        with WebhookReceiver() as receiver:
            rep = await admin.post(
                f"{stack.url('router')}/v1/reps",
                json={
                    "name": REP_NAME,
                    "email": stack.rep_email,
                    "webhook_url": f"{receiver.url}/hooks/{stack.rep_email}",
                },
                headers=ADMIN_AUTH,
            )
            assert rep.status_code == 201, rep.text
            context = {"ip": DEVICE_IP, "userAgent": f"Mozilla/5.0 ({NAME})"}
            for kind, body in (
                ("identify", {"traits": {"name": NAME, "email": email}}),
                ("track", {"event": "Demo Requested", "properties": {"name": NAME}}),
            ):
                sent = await browser.post(
                    f"{stack.url('ingest')}/v1/{kind}",
                    json={"userId": email, "messageId": uuid.uuid4().hex, "context": context}
                    | body,
                    auth=(WRITE_KEY, ""),
                )
                assert sent.status_code == 200, sent.text
            await wait_for_record(
                stack.bootstrap,
                f"{stack.prefix}leads.sla",
                lambda r: r["lead_id"] == email and r["status"] == "started",
                timeout=60,
            )
    yield email


async def test_no_service_logs_the_persons_email_name_or_ip(stack: Stack, person: str) -> None:
    key = quote(person, safe="")
    async with client() as admin:
        for url in (
            f"{stack.url('scorer')}/v1/leads/{key}",
            f"{stack.url('router')}/v1/leads/{key}/assignments",
            f"{stack.url('sla-monitor')}/v1/leads/{key}/clocks?lead={key}",
        ):
            assert answered(await admin.get(url, headers=ADMIN_AUTH))
        assert (await admin.get(f"{stack.url('router')}/v1/no/{key}")).status_code == 404

    def logged(name: str, needle: str) -> bool:
        return needle in stack.logs()[name]

    async def every_service_logged_the_lead() -> bool:
        return (
            logged("scorer", "lead_transition")
            and logged("router", "lead_assigned")
            and logged("sla-monitor", "sla_event")
            and logged("sla-monitor", "/v1/leads/{lead_id}/clocks")
        )

    await wait_until(every_service_logged_the_lead, "each service's lines on the lead", 30)
    local_part = person.split("@")[0]
    personal = [person, local_part, quote(person, safe=""), NAME, DEVICE_IP, CALLER_ADDRESS]
    personal += [stack.rep_email, REP_NAME]
    for name, text in stack.logs().items():
        assert text.strip(), f"{name} wrote no log"
        leaked = [value for value in personal if value in text]
        assert not leaked, f"{name}'s log holds {leaked}"


AUTH_CASES = {
    # service: (method, path, good request kwargs, bad request kwargs)
    "ingest": (
        "POST",
        "/v1/track",
        {"auth": (WRITE_KEY, ""), "json": {"userId": "lead-auth", "event": "x", "messageId": "m"}},
        {"auth": ("guessed-key", ""), "json": {"userId": "lead-auth", "event": "x"}},
    ),
    "router": (
        "GET",
        "/v1/reps",
        {"headers": ADMIN_AUTH},
        {"headers": {"Authorization": "Bearer guess"}},
    ),
    "sla-monitor": (
        "GET",
        "/v1/clocks/at-risk",
        {"headers": ADMIN_AUTH},
        {"headers": {"Authorization": "Bearer guess"}},
    ),
    "scorer": (
        "GET",
        "/v1/leads/{person}",
        {"headers": ADMIN_AUTH},
        {"headers": {"Authorization": "Bearer guess"}},
    ),
}


@pytest.mark.parametrize(
    ("service", "address"),
    [
        ("ingest", "127.0.0.21"),
        ("router", "127.0.0.22"),
        ("sla-monitor", "127.0.0.23"),
        ("scorer", "127.0.0.24"),
    ],
)
async def test_failed_authentications_are_refused_per_address_others_carry_on(
    stack: Stack, person: str, service: str, address: str
) -> None:
    method, path, good, bad = AUTH_CASES[service]
    url = stack.url(service) + path.format(person=quote(person, safe=""))
    async with client(address) as guesser, client() as caller:
        for _ in range(MAX_FAILURES):
            assert (await guesser.request(method, url, **bad)).status_code == 401
        refused = await guesser.request(method, url, **bad)
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        if service != "ingest":  # ingest answers in Segment's {code, message}
            assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()  # says why
        # The refused address is refused even with the right credential; others are not.
        assert (await guesser.request(method, url, **good)).status_code == 429
        assert answered(await caller.request(method, url, **good))


async def test_the_scorer_does_not_serve_fausts_table_and_router_pages(
    stack: Stack, person: str
) -> None:
    scorer = stack.url("scorer")
    async with client() as admin:
        for path in ("/router/", "/table/", "/table/leads/", f"/table/leads/{person}/"):
            answer = await admin.get(f"{scorer}{path}", headers=ADMIN_AUTH)
            assert answer.status_code == 404, (path, answer.text[:200])
        found = await admin.get(f"{scorer}/v1/leads/{quote(person, safe='')}", headers=ADMIN_AUTH)
        assert answered(found)
        assert found.status_code == 503 or found.json()["lead_id"] == person
