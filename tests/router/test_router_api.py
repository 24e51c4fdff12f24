"""The router API on a running router (real Kafka, real PostgreSQL, real webhook receivers):
configuration with field-naming errors, per-rep tokens, the queue draining when a rep
becomes available, dead letters and replay, accounts, nurture, and SLA escalation."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from baton_devstack.webhook_sink import Delivery, WebhookReceiver
from baton_router.app import create_app
from baton_router.config import RouterSettings
from baton_router.service import RouterService
from baton_shared.schemas import SlaEvent, SlaStatus, Stage, Transition
from baton_shared.sla_policy import parse_policy
from tests.support.kafka import wait_for_record
from tests.support.waiting import wait_until
from tests.support.webhooks import next_delivery, no_delivery

pytestmark = pytest.mark.integration

ADMIN = "api-test-admin-token-0123456789"


class Api:
    """A router (service + FastAPI app) and an HTTP client on it."""

    def __init__(self, service: RouterService, client: httpx.AsyncClient):
        self.service, self.client = service, client

    @property
    def topics(self):  # type: ignore[no-untyped-def]
        return self.service.settings.topics

    async def call(
        self, method: str, path: str, token: str = ADMIN, expect: int | None = None, **kw: Any
    ) -> httpx.Response:
        response = await self.client.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kw
        )
        if expect is not None:
            assert response.status_code == expect, response.text
        return response

    async def rep(self, receiver: WebhookReceiver, name: str = "Ada", **profile: Any) -> dict:
        body = {
            "name": name,
            "email": f"{name.lower()}@example.com",
            "webhook_url": f"{receiver.url}/{name.lower()}",
            **profile,
        }
        return (await self.call("POST", "/v1/reps", json=body, expect=201)).json()

    async def query(self, sql: str, **params: object) -> list[tuple]:
        async with self.service.engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]


@asynccontextmanager
async def running_api(
    kafka_bootstrap: str, pg_cluster, unique_name: str, **env: str
) -> AsyncIterator[Api]:
    """A router on its own database and topics; ``env`` adds or overrides settings."""
    settings = RouterSettings(
        **{
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DATABASE_URL": pg_cluster.create_database(unique_name),
            "BATON_TOPIC_PREFIX": f"{unique_name}.",
            "BATON_ENV": "test",
            "BATON_ADMIN_TOKEN": ADMIN,
            "BATON_WEBHOOK_RETRY_SCHEDULE": "0.1,0.1",
            "BATON_DISPATCH_POLL_SECONDS": "0.1",
            "BATON_WEBHOOK_TIMEOUT": "5",
            "BATON_ROUTER_DRAIN_SECONDS": "60",  # drains here come from the API, not the tick
            "BATON_ROUTER_PUBLIC_URL": "https://router.example.com",
            "BATON_WEBHOOK_CONCURRENCY": "2",
            **env,
        }
    )
    app = create_app(settings)
    service: RouterService = app.state.service
    await service.start()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            yield Api(service, client)
    finally:
        await service.stop()


@pytest.fixture
async def api(kafka_bootstrap: str, pg_cluster, unique_name: str) -> AsyncIterator[Api]:
    async with running_api(kafka_bootstrap, pg_cluster, unique_name) as api:
        yield api


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


def transition(lead_id: str | None = None, stage: Stage = Stage.SQL, **kw: Any) -> Transition:
    fields: dict[str, Any] = {
        "transition_id": uuid.uuid4().hex,
        "lead_id": lead_id or f"lead-{uuid.uuid4().hex[:8]}",
        "from_stage": Stage.MQL if stage == Stage.SQL else Stage.NEW,
        "to_stage": stage,
        "score": 120.0,
        "fit": 40.0,
        "engagement": 80.0,
        "reason": "pricing x3",
        "express": False,
        "trigger_event_id": f"evt-{uuid.uuid4().hex[:8]}",
        "trigger_event": "Pricing Viewed",
        "occurred_at": datetime.now(UTC),
        "rules_version": "test",
    }
    return Transition(**(fields | kw))


async def feed(api: Api, producer: AIOKafkaProducer, t: Transition) -> None:
    await producer.send_and_wait(api.topics.transitions, t.to_bytes(), key=t.lead_id.encode())


async def routed_status(api: Api, t: Transition) -> str | None:
    rows = await api.query(
        "SELECT status FROM router.routed_transitions WHERE transition_id = :t", t=t.transition_id
    )
    return rows[0][0] if rows else None


def verified(delivery: Delivery, secret: str) -> dict:
    return Webhook(secret).verify(delivery.body, delivery.headers)


# -- configuration -------------------------------------------------------------------------


async def test_rep_profile_round_trips_and_bad_fields_are_named(api: Api, receiver) -> None:
    rep = await api.rep(
        receiver,
        timezone="Europe/Berlin",
        working_hours={"mon": ["09:00-17:00"]},
        capacity=5,
        weight=2,
        skills={"regions": ["emea"]},
    )
    assert rep["webhook_secret"].startswith("whsec_")
    got = (await api.call("GET", f"/v1/reps/{rep['id']}", expect=200)).json()
    assert (got["timezone"], got["capacity"], got["weight"], got["skills"]) == (
        "Europe/Berlin",
        5,
        2,
        {"regions": ["emea"]},
    )
    assert got["open_leads"] == 0

    cases = [
        ({"timezone": "Mars/Olympus"}, "body.timezone", "value_error", "Mars/Olympus"),
        (
            {"working_hours": {"mon": ["9-5"]}},
            "body.working_hours",
            "value_error",
            "working_hours.mon[0]",
        ),
        ({"capacity": -1}, "body.capacity", "greater_than_equal", "greater than or equal"),
        (
            {"skills": {"planets": ["mars"]}},
            "body.skills.planets.[key]",
            "literal_error",
            "regions",
        ),
        (
            {"out_of_office": [{"start": "2025-01-02T00:00:00Z", "end": "2025-01-01T00:00:00Z"}]},
            "body.out_of_office.0",
            "value_error",
            "after",
        ),
        ({"name": None}, "body.name", "string_type", "valid string"),
        ({"weight": None}, "body.weight", "int_type", "valid integer"),
    ]
    for patch, path, rule, words in cases:
        response = await api.call("PATCH", f"/v1/reps/{rep['id']}", json=patch, expect=422)
        assert response.headers["content-type"] == "application/problem+json"
        [error] = response.json()["errors"]
        assert (error["path"], error["rule"]) == (path, rule), (patch, error)
        assert words in error["message"], (patch, error)


async def test_pools_rules_and_accounts_validate_references(api: Api, receiver) -> None:
    rep = await api.rep(receiver)
    ghost = str(uuid.uuid4())
    bad = await api.call(
        "POST", "/v1/pools", json={"name": "emea", "members": [rep["id"], ghost]}, expect=409
    )
    assert bad.json()["errors"] == [
        {"path": "body.members.1", "rule": "unknown_reference", "message": f"no rep {ghost}"}
    ]
    pool = (
        await api.call(
            "POST",
            "/v1/pools",
            json={"name": "emea", "members": [rep["id"]], "strategy": "weighted"},
            expect=201,
        )
    ).json()
    dup = await api.call("POST", "/v1/pools", json={"name": "emea"}, expect=409)
    assert dup.json()["type"].endswith("/already-exists")
    assert [(e["path"], e["rule"]) for e in dup.json()["errors"]] == [
        ("body.name", "already_exists")
    ]
    bad_op = await api.call(
        "POST",
        "/v1/rules",
        json={
            "name": "big",
            "pool_id": pool["id"],
            "conditions": [{"field": "company_size", "op": "gte", "value": "large"}],
        },
        expect=422,
    )
    assert bad_op.json()["errors"][0]["path"] == "body.conditions.0"
    no_pool = await api.call(
        "POST",
        "/v1/rules",
        json={"name": "x", "pool_id": ghost, "conditions": [{"field": "region", "value": "emea"}]},
        expect=409,
    )
    assert no_pool.json()["errors"][0]["path"] == "body.pool_id"
    rule = (
        await api.call(
            "POST",
            "/v1/rules",
            json={
                "name": "emea",
                "pool_id": pool["id"],
                "position": 1,
                "conditions": [{"field": "region", "op": "in", "value": ["emea", "dach"]}],
            },
            expect=201,
        )
    ).json()
    rules = (await api.call("GET", "/v1/rules", expect=200)).json()
    assert [r["id"] for r in rules["items"]] == [rule["id"]] and rules["next"] is None
    await api.call("PATCH", f"/v1/rules/{rule['id']}", json={"enabled": False}, expect=200)

    bad_domain = await api.call(
        "PUT", "/v1/accounts/not a domain", json={"rep_id": rep["id"]}, expect=422
    )
    [error] = bad_domain.json()["errors"]
    assert (error["path"], error["rule"]) == ("path.domain", "string_pattern_mismatch")
    await api.call("PUT", "/v1/accounts/www.Acme.com", json={"rep_id": rep["id"]}, expect=200)
    assert (await api.call("GET", "/v1/accounts", expect=200)).json()["items"] == [
        {"domain": "acme.com", "rep_id": rep["id"]}
    ]
    nul = await api.call("POST", "/v1/pools", json={"name": "bad\u0000name"}, expect=422)
    assert "value not storable" in nul.json()["errors"][0]["message"]  # found by schemathesis
    await api.call("DELETE", f"/v1/pools/{pool['id']}", expect=204)
    assert (await api.call("GET", "/v1/rules", expect=200)).json()["items"] == []
    await api.call("GET", f"/v1/pools/{pool['id']}", expect=404)


async def test_rep_token_sees_only_that_reps_leads(api: Api, producer, receiver) -> None:
    ada = await api.rep(receiver, "Ada")
    bob = await api.rep(receiver, "Bob", status="away")
    token = (await api.call("POST", f"/v1/reps/{ada['id']}/token", expect=201)).json()["token"]
    bob_token = (await api.call("POST", f"/v1/reps/{bob['id']}/token", expect=201)).json()["token"]
    sql = transition()
    await feed(api, producer, sql)
    verified(await next_delivery(receiver), ada["webhook_secret"])

    me = (await api.call("GET", "/v1/me", token=token, expect=200)).json()
    assert me["id"] == ada["id"] and me["open_leads"] == 1
    page = await api.call("GET", f"/v1/reps/{ada['id']}/leads", token=token, expect=200)
    leads = page.json()["items"]
    assert [lead["lead_id"] for lead in leads] == [sql.lead_id]
    await api.call("GET", f"/v1/reps/{ada['id']}/leads", token=bob_token, expect=403)
    await api.call("GET", "/v1/reps", token=token, expect=403)
    await api.call("POST", "/v1/pools", token=token, json={"name": "x"}, expect=403)
    await api.call("GET", "/v1/me", token="rtok_not-a-token", expect=401)
    await api.call(
        "POST",
        f"/v1/leads/{sql.lead_id}/activity",
        token=bob_token,
        json={"kind": "contacted"},
        expect=404,
    )

    await api.call(
        "POST",
        f"/v1/leads/{sql.lead_id}/activity",
        token=token,
        json={"kind": "rejected"},
        expect=422,
    )  # a rejection needs a reason
    await api.call(
        "POST",
        f"/v1/leads/{sql.lead_id}/activity",
        token=token,
        json={"kind": "qualified", "bant": ["budget", "need"]},
        expect=202,
    )
    me = (await api.call("GET", "/v1/me", token=token, expect=200)).json()
    assert me["open_leads"] == 1  # qualified: the rep is still working the lead
    accepted = await api.call(
        "POST",
        f"/v1/leads/{sql.lead_id}/activity",
        token=token,
        json={"kind": "contacted"},
        expect=202,
    )
    seen = await wait_for_record(
        api.service.settings.kafka_bootstrap_servers,
        api.topics.activity,
        lambda r: r["activity_id"] == accepted.json()["activity_id"],
    )
    assert (seen[-1]["rep_id"], seen[-1]["kind"]) == (ada["id"], "contacted")
    assert seen[-1]["assignment_id"] == leads[0]["assignment_id"]
    me = (await api.call("GET", "/v1/me", token=token, expect=200)).json()
    assert me["open_leads"] == 0  # contacted: no longer counts against capacity


# -- the queue ------------------------------------------------------------------------------


async def test_queued_sql_is_assigned_the_moment_a_rep_comes_online(
    api: Api, producer, receiver
) -> None:
    rep = await api.rep(receiver, status="away")
    sql = transition()
    await feed(api, producer, sql)
    await wait_until(lambda: _is(api, sql, "queued"), "SQL queued")
    await no_delivery(receiver, within=0.3)

    await api.call(
        "PUT", f"/v1/reps/{rep['id']}/availability", json={"status": "online"}, expect=200
    )

    payload = verified(await next_delivery(receiver, timeout=5), rep["webhook_secret"])
    assert payload["data"]["transition_id"] == sql.transition_id
    assert await routed_status(api, sql) == "assigned"


async def test_capacity_holds_leads_in_the_queue_until_the_rep_works_one_off(
    api: Api, producer, receiver
) -> None:
    rep = await api.rep(receiver, capacity=1)
    first, second = transition(), transition()
    await feed(api, producer, first)
    await next_delivery(receiver)
    await feed(api, producer, second)
    await wait_until(lambda: _is(api, second, "queued"), "second SQL queued (rep at capacity)")
    await no_delivery(receiver, within=0.3)

    await api.call(
        "POST", f"/v1/leads/{first.lead_id}/activity", json={"kind": "contacted"}, expect=202
    )

    payload = verified(await next_delivery(receiver, timeout=5), rep["webhook_secret"])
    assert payload["data"]["lead_id"] == second.lead_id


async def _is(api: Api, t: Transition, status: str) -> bool:
    return await routed_status(api, t) == status


# -- the webhook -----------------------------------------------------------------------------


async def test_webhook_gives_the_rep_what_they_need_to_act(api: Api, producer, receiver) -> None:
    rep = await api.rep(receiver)
    mql = transition(stage=Stage.MQL, score=60)
    await feed(api, producer, mql)
    sql = transition(mql.lead_id, express=True, trigger_event="Demo Requested")
    await feed(api, producer, sql)

    data = verified(await next_delivery(receiver), rep["webhook_secret"])["data"]
    assert (data["lead_id"], data["rep_id"], data["express"], data["transition_id"]) == (
        sql.lead_id,
        rep["id"],
        True,
        sql.transition_id,
    )
    assert (data["score"], data["breakdown"]["fit"], data["breakdown"]["engagement"]) == (
        120.0,
        40.0,
        80.0,
    )
    assert data["trigger_event"] == "Demo Requested"
    assert data["pool"] == "default" and data["strategy"] == "round_robin"
    due = datetime.fromisoformat(data["sla_due_at"]) - datetime.fromisoformat(data["assigned_at"])
    assert due == timedelta(seconds=300)  # express window
    assert [h["to_stage"] for h in data["history"] if h["type"] == "transition"] == ["sql", "mql"]
    assert data["actions"]["url"] == (f"https://router.example.com/v1/leads/{sql.lead_id}/activity")
    assert data["actions"]["reject"]["kind"] == "rejected"


TEAM_POLICY = """
name: teams
first_touch_seconds: {express_sql: 300, sql: 3600, mql: 86400}
calendars:
  ny:
    timezone: America/New_York
    working_days: [mon, tue, wed, thu, fri]
    hours: ["09:00-17:00"]
teams:
  default:
    calendar: ny
    first_touch_seconds: {express_sql: 900}
"""


async def test_due_time_is_the_sla_policys_deadline_for_the_pool(
    kafka_bootstrap: str, pg_cluster, unique_name: str, tmp_path: Path, receiver, producer
) -> None:
    """The SLA monitor's policy file decides the rep's due time: the pool's (team's) own
    window, counted in its business hours, exactly as the monitor's clock will."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(TEAM_POLICY)
    async with running_api(
        kafka_bootstrap, pg_cluster, unique_name, BATON_SLA_POLICY_FILE=str(policy)
    ) as api:
        rep = await api.rep(receiver)
        sql = transition(express=True, trigger_event="Demo Requested")
        await feed(api, producer, sql)
        data = verified(await next_delivery(receiver), rep["webhook_secret"])["data"]

    assigned_at = datetime.fromisoformat(data["assigned_at"])
    told = datetime.fromisoformat(data["sla_due_at"])
    assert data["pool"] == "default"
    monitor = parse_policy(TEAM_POLICY).plan(assigned_at, "sql", True, team="default")
    assert told == monitor.deadline_at
    assert told - assigned_at >= timedelta(seconds=900)  # the team's window, not 300 s


async def test_dead_webhook_is_listed_and_replayed(api: Api, producer) -> None:
    with WebhookReceiver(status=500) as failing:
        rep = await api.rep(failing)
        sql = transition()
        await feed(api, producer, sql)
        for _ in range(3):  # the first try and two retries
            await next_delivery(failing)

        async def dead() -> list[dict]:
            return (await api.call("GET", "/v1/webhooks/dead", expect=200)).json()["items"]

        [letter] = await wait_until(dead, "dead letter listed")
        assert (letter["kind"], letter["rep_id"], letter["attempts"]) == ("webhook", rep["id"], 3)
        assert letter["last_error"] == "HTTP 500"

        failing.status = 200
        await api.call("POST", f"/v1/webhooks/dead/{letter['id']}/replay", expect=202)
        again = await next_delivery(failing, timeout=5)
        assert verified(again, rep["webhook_secret"])["data"]["transition_id"] == (
            sql.transition_id
        )
        await wait_until(lambda: _no_dead(api), "dead list empty")
        await api.call("POST", f"/v1/webhooks/dead/{letter['id']}/replay", expect=404)


async def _no_dead(api: Api) -> bool:
    return (await api.call("GET", "/v1/webhooks/dead", expect=200)).json()["items"] == []


async def test_one_endpoint_never_gets_more_than_its_concurrency_limit(api: Api, producer) -> None:
    """BATON_WEBHOOK_CONCURRENCY=2: a slow receiver sees at most two requests at once,
    and every lead still arrives."""
    lock = threading.Lock()
    in_flight = [0]
    peak = [0]
    release = threading.Event()

    def slow(_: Delivery) -> None:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        release.wait(0.3)
        with lock:
            in_flight[0] -= 1

    with WebhookReceiver(on_delivery=slow) as receiver:
        await api.rep(receiver)
        sent = [transition() for _ in range(8)]
        for t in sent:
            await feed(api, producer, t)
        got = {orjson_data(await next_delivery(receiver))["transition_id"] for _ in sent}
    assert got == {t.transition_id for t in sent}
    assert peak[0] == 2


# -- accounts, nurture, escalation -----------------------------------------------------------


async def test_lead_from_an_owned_domain_goes_to_the_account_owner(
    api: Api, producer, receiver
) -> None:
    await api.rep(receiver, "Ada")
    owner = await api.rep(receiver, "Olga")
    await api.call("PUT", "/v1/accounts/acme.com", json={"rep_id": owner["id"]}, expect=200)
    for _ in range(2):
        await feed(api, producer, transition("jane@acme.com"))
        data = verified(await next_delivery(receiver), owner["webhook_secret"])["data"]
        assert (data["rep_id"], data["strategy"]) == (owner["id"], "account_owner")


async def test_mql_is_enrolled_in_the_matching_nurture_track(api: Api, producer, receiver) -> None:
    await api.call(
        "POST",
        "/v1/nurture-tracks",
        expect=201,
        json={
            "name": "enterprise",
            "position": 1,
            "webhook_url": f"{receiver.url}/enterprise",
            "conditions": [{"field": "fit", "op": "gte", "value": 50}],
        },
    )
    general = (
        await api.call(
            "POST",
            "/v1/nurture-tracks",
            expect=201,
            json={"name": "general", "position": 2, "webhook_url": f"{receiver.url}/general"},
        )
    ).json()
    mql = transition(stage=Stage.MQL, fit=10)
    await feed(api, producer, mql)

    delivery = await next_delivery(receiver)
    payload = verified(delivery, general["webhook_secret"])
    assert delivery.path == "/general"
    assert payload["type"] == "lead.nurture"
    assert (payload["data"]["lead_id"], payload["data"]["track"]) == (mql.lead_id, "general")
    assert await routed_status(api, mql) == "nurtured"


async def breach(api: Api, producer: AIOKafkaProducer, assignment: dict) -> None:
    now = datetime.now(UTC)
    event = SlaEvent(
        event_id=uuid.uuid4().hex,
        clock_id=uuid.uuid4().hex,
        lead_id=assignment["lead_id"],
        rep_id=assignment["rep_id"],
        assignment_id=assignment["assignment_id"],
        status=SlaStatus.BREACHED,
        started_at=now - timedelta(minutes=5),
        deadline_at=now,
        at=now,
    )
    await producer.send_and_wait(
        api.topics.sla, event.to_bytes(), key=assignment["lead_id"].encode()
    )


async def test_breach_takes_the_lead_back_and_reassigns_up_to_the_cap(
    api: Api, producer, receiver
) -> None:
    ada, bob = await api.rep(receiver, "Ada"), await api.rep(receiver, "Bob")
    pool = (
        await api.call(
            "POST",
            "/v1/pools",
            expect=201,
            json={"name": "sales", "members": [ada["id"], bob["id"]], "max_reassignments": 1},
        )
    ).json()
    await api.call(
        "POST",
        "/v1/rules",
        expect=201,
        json={
            "name": "all",
            "pool_id": pool["id"],
            "conditions": [{"field": "score", "op": "gte", "value": 0}],
        },
    )
    secrets = {ada["id"]: ada["webhook_secret"], bob["id"]: bob["webhook_secret"]}
    sql = transition()
    await feed(api, producer, sql)
    first = await next_delivery(receiver)
    data = orjson_data(first)
    original = data["rep_id"]
    verified(first, secrets[original])

    await breach(api, producer, data)

    got = {}
    for _ in range(2):
        delivery = await next_delivery(receiver)
        payload = verified(delivery, secrets[orjson_data(delivery)["rep_id"]])
        got[payload["type"]] = payload["data"]
    other = bob["id"] if original == ada["id"] else ada["id"]
    assert got["lead.taken_back"]["rep_id"] == original
    assert got["lead.taken_back"]["reassigned_to"] == other
    assert got["lead.assigned"]["rep_id"] == other
    assert got["lead.assigned"]["previous_rep_id"] == original
    assert got["lead.assigned"]["reassignments"] == 1

    await breach(api, producer, got["lead.assigned"])  # over the pool's cap of 1
    await no_delivery(receiver, within=1.0)
    rows = await api.query(
        "SELECT rep_id::text, status FROM router.assignments "
        "WHERE lead_id = :l ORDER BY assigned_at",
        l=sql.lead_id,
    )
    assert rows == [(original, "taken_back"), (other, "open")]


def orjson_data(delivery: Delivery) -> dict:
    return orjson.loads(delivery.body)["data"]


async def test_manager_policy_tells_the_manager_and_leaves_the_lead(
    api: Api, producer, receiver
) -> None:
    ada = await api.rep(receiver, "Ada")
    boss = await api.rep(receiver, "Boss", status="offline")  # gets no leads, only escalations
    pool = (
        await api.call(
            "POST",
            "/v1/pools",
            expect=201,
            json={
                "name": "sales",
                "members": [ada["id"]],
                "escalation": "manager",
                "manager_rep_id": boss["id"],
            },
        )
    ).json()
    await api.call(
        "POST",
        "/v1/rules",
        expect=201,
        json={
            "name": "all",
            "pool_id": pool["id"],
            "conditions": [{"field": "express", "op": "exists"}],
        },
    )
    await feed(api, producer, transition())
    data = orjson_data(await next_delivery(receiver))
    assert data["rep_id"] == ada["id"]

    await breach(api, producer, data)

    delivery = await next_delivery(receiver)
    payload = verified(delivery, boss["webhook_secret"])
    assert delivery.path == "/boss"
    assert payload["type"] == "lead.escalated"
    assert (payload["data"]["rep_id"], payload["data"]["pool"]) == (ada["id"], "sales")


async def test_metrics_count_assignments_by_strategy_and_pool(api: Api, producer, receiver) -> None:
    await api.rep(receiver)
    await feed(api, producer, transition())
    await next_delivery(receiver)
    text_ = (await api.client.get("/metrics")).text
    assert 'baton_router_assignments_total{pool="default",strategy="round_robin"}' in text_
    assert "baton_router_transition_to_webhook_seconds_bucket" in text_
    assert 'baton_router_webhook_attempts_total{endpoint="rep:' in text_
