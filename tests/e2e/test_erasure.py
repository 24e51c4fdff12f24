"""A person is erased everywhere Baton keeps them: four service processes in privacy mode
(``BATON_PRIVACY_KEY``), real Kafka and PostgreSQL.

The person browses anonymously, reads emails (SendGrid's signed webhook), identifies
(merging the anonymous visitor and the email lead into their user), requests a demo (an
SQL: assigned to a rep, an SLA clock) and has a record dead-lettered. A second person
identifies too. After ``POST /v1/privacy/erase`` with one of the person's ids completes,
their email, name, IP, user id and anonymous id are nowhere in clear: not in any topic
of the deployment (changelogs and DLQs included), any table, the scorer's state or data
directory, or any service's log; the second person is still looked up and exported
with their email.
"""

from __future__ import annotations

import asyncio
import csv
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from baton_analytics.cli import main as baton
from baton_analytics.ranges import ReadRange
from baton_analytics.source import TopicReader
from baton_devstack.ports import free_port
from baton_devstack.services import SERVICES, ServiceProcess, start_services, stop_services
from baton_devstack.webhook_sink import WebhookReceiver
from baton_shared.privacy import KeyStore, PrivacySettings, pseudonym, seal_event
from baton_shared.schemas import EventType, LeadEvent
from tests.ingest.test_email_events import PUBLIC_KEY_B64, sendgrid_headers
from tests.support.kafka import wait_for_record
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ADMIN = "erasure-admin-token-0123456789"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
WRITE_KEY = "erasure-write-key"
PRIVACY_KEY = "erasure-privacy-key-0123456789abcdef"
REQUESTED_BY = "dpo-ticket-4711"


@dataclass(frozen=True)
class Person:
    user_id: str
    anonymous_id: str
    email: str
    name: str
    ip: str

    @property
    def clear(self) -> list[str]:
        """Everything that says who they are."""
        return [self.user_id, self.anonymous_id, self.email, self.name, self.ip]


@dataclass(frozen=True)
class Erased:
    person: Person
    other: Person  # not erased
    erasure_id: str
    told_rep: str  # the webhook telling the rep of the person's assignment


@dataclass
class Stack:
    services: dict[str, ServiceProcess]
    env: dict[str, str]
    workdir: Path
    prefix: str
    bootstrap: str
    database_url: str
    id_key: bytes

    def url(self, name: str) -> str:
        return self.services[name].url

    def pseudonym(self, raw: str) -> str:
        return pseudonym(self.id_key, raw)

    def tails(self) -> str:
        """Each service's last lines, to say why something did not happen."""
        return "\n".join(f"--- {name}\n{s.log_tail(15)}" for name, s in self.services.items())


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, pg_cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    name = f"erase{uuid.uuid4().hex[:8]}"
    workdir: Path = tmp_path_factory.mktemp(name)
    database_url = pg_cluster.create_database(name)
    env = {
        "BATON_ENV": "test",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "BATON_TOPIC_PREFIX": f"{name}.",
        "BATON_ADMIN_TOKEN": ADMIN,
        "BATON_INGEST_WRITE_KEYS": WRITE_KEY,
        "BATON_INGEST_SENDGRID_VERIFICATION_KEY": PUBLIC_KEY_B64,
        "BATON_SCORER_DATA_DIR": str(workdir / "scorer"),
        "BATON_PRIVACY_KEY": PRIVACY_KEY,
        "BATON_LOG_FORMAT": "console",
    }
    keys = PrivacySettings(BATON_PRIVACY_KEY=PRIVACY_KEY).privacy_keys
    assert keys is not None
    ports = {spec.name: free_port() for spec in SERVICES}
    services = start_services(env, workdir / "logs", ports)
    try:
        yield Stack(
            {s.spec.name: s for s in services},
            env,
            workdir,
            f"{name}.",
            kafka_bootstrap,
            database_url,
            keys.id_key,
        )
    finally:
        stop_services(services)


def people(stack: Stack) -> tuple[Person, Person]:
    tag = stack.prefix.rstrip(".")
    return (
        Person(f"usr-{tag}-a", f"anon-{tag}-a", f"hedy.{tag}@example.com", "Hedy Lamarr",
               "203.0.113.41"),
        Person(f"usr-{tag}-b", f"anon-{tag}-b", f"grace.{tag}@example.com", "Grace Hopper",
               "198.51.100.42"),
    )  # fmt: skip


async def track(http: httpx.AsyncClient, stack: Stack, kind: str, body: dict) -> None:
    sent = await http.post(
        f"{stack.url('ingest')}/v1/{kind}",
        json={"messageId": uuid.uuid4().hex} | body,
        auth=(WRITE_KEY, ""),
    )
    assert sent.status_code == 200, sent.text


async def sendgrid(http: httpx.AsyncClient, stack: Stack, person: Person) -> None:
    now = int(time.time())
    events = [
        {
            "email": person.email.upper(),  # as the provider spells it
            "event": kind,
            "sg_event_id": uuid.uuid4().hex,
            "sg_message_id": "msg-launch",
            "timestamp": now - 30 + i,
            "ip": person.ip,
            "useragent": f"Mail ({person.name})",
            "url": "https://acme.example/pricing?utm_source=newsletter",
        }
        for i, kind in enumerate(("open", "click"))
    ]
    body = orjson.dumps(events)
    sent = await http.post(
        f"{stack.url('ingest')}/v1/email/sendgrid", content=body, headers=sendgrid_headers(body)
    )
    assert sent.status_code == 200, sent.text


async def dead_letter(stack: Stack, person: Person) -> None:
    """A record of the person the scorer cannot score, sealed as ingest seals: to the DLQ."""
    lead = stack.pseudonym(person.user_id)
    event = LeadEvent(
        event_id=uuid.uuid4().hex,
        lead_id=person.user_id,
        user_id=person.user_id,
        email=person.email,
        ip=person.ip,
        traits={"name": person.name},
        type=EventType.TRACK,
        name="Broken",
        occurred_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
        received_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
        source="segment",
    )
    settings = PrivacySettings(BATON_PRIVACY_KEY=PRIVACY_KEY)
    keys = await KeyStore.open(settings, database_url=stack.database_url)  # type: ignore[arg-type]
    try:
        key = (await keys.keys([lead]))[lead]  # the one ingest made for the person
    finally:
        await keys.close()
    clear = event.model_dump(mode="json", by_alias=True)
    record = seal_event(clear, stack.id_key, lambda _: key)
    record["type"] = "no-such-type"  # what no consumer can decode
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            f"{stack.prefix}leads.events", orjson.dumps(record), key=lead.encode()
        )
    finally:
        await producer.stop()
    await wait_for_record(
        stack.bootstrap,
        f"{stack.prefix}leads.events.dlq",
        lambda r: r["key"] == lead,
        timeout=30,
    )


@pytest.fixture(scope="module")
async def erased(stack: Stack) -> AsyncIterator[Erased]:
    """Both people's traffic, the first one's erasure completed."""
    person, other = people(stack)
    async with httpx.AsyncClient(timeout=10) as http:
        with WebhookReceiver() as receiver:
            rep = await http.post(
                f"{stack.url('router')}/v1/reps",
                json={
                    "name": "Katherine Johnson",
                    "email": f"katherine.{stack.prefix}rep@example.com",
                    "webhook_url": f"{receiver.url}/hooks/rep",
                },
                headers=ADMIN_AUTH,
            )
            assert rep.status_code == 201, rep.text
            context = {"ip": person.ip, "userAgent": f"Mozilla/5.0 ({person.name})"}
            await track(http, stack, "page", {
                "anonymousId": person.anonymous_id,
                "name": "Pricing",
                "properties": {"url": "https://acme.example/pricing", "title": person.name},
                "context": context,
            })  # fmt: skip
            await sendgrid(http, stack, person)
            await track(http, stack, "identify", {
                "userId": person.user_id,
                "anonymousId": person.anonymous_id,
                "traits": {"email": person.email, "name": person.name},
                "context": context,
            })  # fmt: skip
            # The email lead (SendGrid's events) was merged into the user's:
            # the identify (stitched by its anonymous id) is in before the demo request.
            await wait_for_record(
                stack.bootstrap,
                f"{stack.prefix}leads.merges",
                lambda r: r["merged_id"] == stack.pseudonym(person.email),
                timeout=30,
            )
            await track(http, stack, "track", {
                "userId": person.user_id,
                "event": "Demo Requested",
                "properties": {"name": person.name},
                "context": context,
            })  # fmt: skip
            await track(http, stack, "identify", {
                "userId": other.user_id,
                "anonymousId": other.anonymous_id,
                "traits": {"email": other.email, "name": other.name},
                "context": {"ip": other.ip},
            })  # fmt: skip
            lead = stack.pseudonym(person.user_id)
            await wait_for_record(
                stack.bootstrap,
                f"{stack.prefix}leads.sla",
                lambda r: r["lead_id"] == lead and r["status"] == "started",
                timeout=60,
            )
            told = await asyncio.to_thread(receiver.deliveries.get, True, 30)
            await dead_letter(stack, person)
        erase = await http.post(
            f"{stack.url('router')}/v1/privacy/erase",
            json={"email": person.email, "requested_by": REQUESTED_BY},
            headers=ADMIN_AUTH,
        )
        assert erase.status_code == 202, erase.text
        erasure_id = erase.json()["erasure_id"]

        status: dict = {}

        async def completed() -> bool:
            got = await http.get(
                f"{stack.url('router')}/v1/privacy/erasures/{erasure_id}", headers=ADMIN_AUTH
            )
            assert got.status_code == 200, got.text
            status.update(got.json())
            return status.get("completed_at") is not None

        try:
            await wait_until(completed, "the erasure to complete", 30)
        except AssertionError:
            why = f"the erasure did not complete: {status}\n{stack.tails()}"
            raise AssertionError(why) from None
    yield Erased(person, other, erasure_id, told.body.decode())


def found(text: str, person: Person) -> list[str]:
    """The person's clear values in ``text`` (case-insensitive)."""
    lowered = text.lower()
    return [v for v in person.clear if v.lower() in lowered]


async def test_the_rep_was_told_who_the_lead_is(stack: Stack, erased: Erased) -> None:
    """Before the erasure the person's data was there to be read: the router opened the
    sealed transition for the rep's webhook."""
    assert erased.person.email in erased.told_rep, erased.told_rep


async def test_no_topic_holds_the_person_in_clear(stack: Stack, erased: Erased) -> None:
    person = erased.person
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(stack.prefix)]
    finally:
        await admin.close()
    assert f"{stack.prefix}leads.events.dlq" in names
    assert any(t.endswith("changelog") for t in names), names
    leaks: dict[str, list[str]] = {}
    keys_seen = set()
    async with TopicReader(stack.bootstrap, names, ReadRange()) as reader:
        async for batch in reader.batches():
            for r in batch:
                raw = (r.key or b"") + b"\n" + (r.value or b"")
                keys_seen.add(r.key)
                if hits := found(raw.decode("utf-8", "replace"), person):
                    leaks.setdefault(r.topic, []).extend(hits)
    assert stack.pseudonym(person.user_id).encode() in keys_seen  # the reader read them
    assert not leaks, leaks


async def test_no_table_holds_the_person_in_clear(stack: Stack, erased: Erased) -> None:
    person = erased.person
    connection = await asyncpg.connect(stack.database_url)
    try:
        tables = await connection.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        dump = []
        for schema, table in tables:
            rows = await connection.fetch(f'SELECT t::text AS row FROM "{schema}"."{table}" t')
            dump += [f"{schema}.{table}: {r['row']}" for r in rows]
    finally:
        await connection.close()
    text = "\n".join(dump)
    assert "katherine." in text  # the rep: the dump reads what the tables hold
    leaks = [line for line in dump if found(line, person) or _hex_hits(line, person)]
    assert not leaks, leaks
    # Rows kept for counts lose the lead's id too; only the erasure's record names the
    # pseudonyms it was given.
    pseudonyms = [stack.pseudonym(v) for v in (person.user_id, person.email, person.anonymous_id)]
    kept = [
        line
        for line in dump
        if not line.startswith("privacy.erasures:") and any(p in line for p in pseudonyms)
    ]
    assert not kept, kept


def _hex_hits(line: str, person: Person) -> bool:
    """A clear value stored in a bytea column (shown as hex)."""
    return any(v.encode().hex() in line for v in person.clear)


async def test_the_scorer_knows_the_person_no_more(stack: Stack, erased: Erased) -> None:
    """Looked up by any of their ids the person is unknown (404), the other person is
    found (200). A worker still learning which worker owns a key (after a start under
    load, until its next rebalance) answers 503 for every key: that shows nobody."""
    person, other = erased.person, erased.other
    async with httpx.AsyncClient(timeout=10) as http:

        async def lookup(value: str) -> tuple[int, str]:
            got = await http.get(
                f"{stack.url('scorer')}/v1/leads/{quote(value, safe='')}", headers=ADMIN_AUTH
            )
            owner_unknown = got.status_code == 503 and "owner is not known" in got.text
            return (0 if owner_unknown else got.status_code), got.text[:300]

        for value in (person.user_id, person.email, person.anonymous_id):
            answered = await lookup(value)
            assert answered[0] in (0, 404), (value, answered)
        answered = await lookup(other.user_id)
        assert answered[0] in (0, 200), answered
    on_disk = [
        path
        for path in stack.workdir.joinpath("scorer").rglob("*")
        if path.is_file() and found(path.read_bytes().decode("utf-8", "replace"), person)
    ]
    assert not on_disk, on_disk


async def test_no_service_logged_the_person(stack: Stack, erased: Erased) -> None:
    person = erased.person
    for name, service in stack.services.items():
        text = service.log_path.read_text(errors="replace")
        assert text.strip(), f"{name} wrote no log"
        assert not found(text, person), f"{name}'s log holds {found(text, person)}"


async def test_the_erasure_is_recorded_without_the_data(stack: Stack, erased: Erased) -> None:
    person, erasure_id = erased.person, erased.erasure_id
    connection = await asyncpg.connect(stack.database_url)
    try:
        row = await connection.fetchrow(
            "SELECT * FROM privacy.erasures WHERE erasure_id = $1", uuid.UUID(erasure_id)
        )
    finally:
        await connection.close()
    assert row is not None
    assert row["requested_by"] == REQUESTED_BY and row["requested_at"] is not None
    assert row["completed_at"] is not None
    assert stack.pseudonym(person.email) in row["subjects"]
    assert not found(str(dict(row)), person)


async def test_an_export_shows_the_other_person_and_not_the_erased_one(
    stack: Stack, erased: Erased, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    person, other = erased.person, erased.other
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "BATON_TOPIC_PREFIX", "BATON_PRIVACY_KEY"):
        monkeypatch.setenv(name, stack.env[name])
    monkeypatch.setenv("DATABASE_URL", stack.database_url)
    output = tmp_path / "events.csv"
    assert await asyncio.to_thread(baton, ["export", "leads.events", "-o", str(output)]) == 0
    rows = list(csv.DictReader(output.open()))
    erased_rows = [r for r in rows if r["lead_id"] == stack.pseudonym(person.user_id)]
    assert erased_rows and not any(r["email"] or r["ip"] for r in erased_rows)
    assert not found(output.read_text(), person)
    assert other.email in {r["email"] for r in rows}
