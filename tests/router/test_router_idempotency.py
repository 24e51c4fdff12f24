"""``Idempotency-Key`` on a running router (real Kafka and PostgreSQL): a retried create
or activity acts once and answers the first result again; the same key on another
request is a 409; concurrent requests with one key create one thing; without the header
every request acts."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from baton_devstack.webhook_sink import WebhookReceiver
from tests.router import test_router_api as base
from tests.router.test_router_api import ADMIN, Api, feed, next_delivery, transition
from tests.support.kafka import wait_for_record

pytestmark = pytest.mark.integration

api = base.api
receiver = base.receiver


def rep_body(receiver: WebhookReceiver, name: str = "Ada") -> dict[str, Any]:
    return {"name": name, "email": "ada@example.com", "webhook_url": f"{receiver.url}/ada"}


async def post(
    api: Api, path: str, key: str | None, token: str = ADMIN, expect: int | None = None, **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    response = await api.client.post(path, headers=headers, **kw)
    if expect is not None:
        assert response.status_code == expect, response.text
    return response


async def reps_in_db(api: Api) -> int:
    [(count,)] = await api.query("SELECT count(*) FROM router.reps")
    return int(count)


async def test_a_retried_create_returns_the_first_rep_and_creates_nothing(
    api: Api, receiver
) -> None:
    key = str(uuid.uuid4())
    first = await post(api, "/v1/reps", key, json=rep_body(receiver), expect=201)
    again = await post(api, "/v1/reps", key, json=rep_body(receiver), expect=201)
    assert again.json() == first.json()  # the same id and webhook secret
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await reps_in_db(api) == 1

    other = await post(api, "/v1/reps", key, json=rep_body(receiver, "Bob"), expect=409)
    assert "different request" in other.text
    assert await reps_in_db(api) == 1


async def test_without_a_key_every_create_acts(api: Api, receiver) -> None:
    one = await post(api, "/v1/reps", None, json=rep_body(receiver), expect=201)
    two = await post(api, "/v1/reps", None, json=rep_body(receiver), expect=201)
    assert one.json()["id"] != two.json()["id"]
    assert await reps_in_db(api) == 2


async def test_concurrent_requests_with_one_key_create_one_rep(api: Api, receiver) -> None:
    key = str(uuid.uuid4())
    answers = await asyncio.gather(
        *(post(api, "/v1/reps", key, json=rep_body(receiver)) for _ in range(5))
    )
    assert {r.status_code for r in answers} == {201}, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in answers) == [""] + ["true"] * 4
    assert await reps_in_db(api) == 1


async def test_keys_belong_to_their_caller_refusals_free_them_and_they_expire(
    api: Api, receiver
) -> None:
    key = str(uuid.uuid4())
    pool = await post(api, "/v1/pools", key, json={"name": "emea"}, expect=201)
    ada = await post(api, "/v1/reps", str(uuid.uuid4()), json=rep_body(receiver), expect=201)
    token = (await api.call("POST", f"/v1/reps/{ada.json()['id']}/token", expect=201)).json()
    # A rep's key space is its own: the admin's key there is not a conflict (the rep is
    # refused for what it asks, which leaves the key unused).
    await post(api, "/v1/pools", key, token=token["token"], json={"name": "x"}, expect=403)

    refused_key = str(uuid.uuid4())
    await post(api, "/v1/pools", refused_key, json={"name": ""}, expect=422)
    await post(api, "/v1/pools", refused_key, json={"name": "dach"}, expect=201)

    async with api.service.engine.begin() as conn:
        await conn.exec_driver_sql(
            "UPDATE router.idempotency_keys SET expires_at = now() - interval '1 second'"
        )
    again = await post(api, "/v1/pools", key, json={"name": "nordics"}, expect=201)
    assert again.json()["id"] != pool.json()["id"]


async def test_a_retried_activity_is_recorded_once(
    api: Api, producer, receiver, kafka_bootstrap
) -> None:
    await api.rep(receiver, "Ada")
    sql = transition()
    await feed(api, producer, sql)
    await next_delivery(receiver)
    url, key = f"/v1/leads/{sql.lead_id}/activity", str(uuid.uuid4())

    first = await post(api, url, key, json={"kind": "accepted"}, expect=202)
    again = await post(api, url, key, json={"kind": "accepted"}, expect=202)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    await post(api, url, key, json={"kind": "rejected"}, expect=409)
    last = await post(api, url, None, json={"kind": "contacted"}, expect=202)

    # Keyed by lead, so in order on one partition: reading up to the last sees them all.
    seen = await wait_for_record(
        kafka_bootstrap,
        api.topics.activity,
        lambda r: r["activity_id"] == last.json()["activity_id"],
    )
    kinds = [r["kind"] for r in seen if r["lead_id"] == sql.lead_id]
    assert kinds == ["accepted", "contacted"]


async def test_a_retried_dead_letter_replay_answers_the_first_replay(api: Api, producer) -> None:
    with WebhookReceiver(status=500) as failing:
        await api.rep(failing)
        await feed(api, producer, transition())
        for _ in range(3):  # the first try and two retries
            await next_delivery(failing)

        async def dead() -> list[dict]:
            return (await api.call("GET", "/v1/webhooks/dead", expect=200)).json()["items"]

        [letter] = await base.wait_until(dead, "dead letter listed")
        failing.status = 200
        url, key = f"/v1/webhooks/dead/{letter['id']}/replay", str(uuid.uuid4())
        first = await post(api, url, key, expect=202)
        await next_delivery(failing, timeout=5)
        again = await post(api, url, key, expect=202)  # without the key: 404, not dead now
        assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
        await post(api, url, None, expect=404)
