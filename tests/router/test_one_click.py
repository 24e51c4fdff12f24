"""One-click links on a running router (real Kafka and PostgreSQL): the assignment's
webhook carries them, a GET only shows a page, a POST records the activity once through
the same path as the API; used, expired, tampered and foreign links get a page with their
status and change nothing. Slack: the assignment reaches the rep's (or else the pool's)
incoming webhook as Block Kit within Slack's limits, through the outbox's retries, dead
letters and replay."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest

from baton_devstack.webhook_sink import WebhookReceiver
from baton_router.links import LinkAction
from baton_shared.clock import utcnow
from baton_shared.dispositions import Disposition
from tests.router import test_router_api as base
from tests.router.test_router_api import (
    Api,
    breach,
    feed,
    next_delivery,
    no_delivery,
    orjson_data,
    transition,
    wait_until,
)
from tests.support.kafka import read_all, wait_for_record
from tests.support.slack import checked

pytestmark = pytest.mark.integration

api = base.api
receiver = base.receiver


def path_of(url: str) -> str:
    return urlsplit(url).path


async def assigned(api: Api, producer, receiver, **kw) -> dict:
    await feed(api, producer, transition(**kw))
    return orjson_data(await next_delivery(receiver))


async def pool_for_everyone(api: Api, members: list[str], **fields: object) -> dict:
    """A pool every lead is routed to."""
    body = {"name": "sales", "members": members, **fields}
    pool = (await api.call("POST", "/v1/pools", json=body, expect=201)).json()
    everything = [{"field": "score", "op": "gte", "value": 0}]
    rule = {"name": "all", "pool_id": pool["id"], "conditions": everything}
    await api.call("POST", "/v1/rules", json=rule, expect=201)
    return pool


async def status_of(api: Api, assignment_id: str) -> str:
    [(status,)] = await api.query(
        "SELECT status FROM router.assignments WHERE id = CAST(:a AS uuid)", a=assignment_id
    )
    return status


async def activities(api: Api, kafka_bootstrap: str, lead_id: str) -> list[dict]:
    records = await read_all(kafka_bootstrap, api.topics.activity, idle_s=0.5)
    return [r for r in records if r["lead_id"] == lead_id]


async def test_accept_link_shows_a_page_then_records_the_activity_once(
    api: Api, producer, receiver, kafka_bootstrap
) -> None:
    ada = await api.rep(receiver, "Ada")
    data = await assigned(api, producer, receiver)
    links = data["links"]
    assert set(links) == {"accept", "reject", "contacted", "expires_at"}
    assert links["accept"].startswith("https://router.example.com/links/")
    accept = path_of(links["accept"])

    page = await api.client.get(accept)  # what a link scanner does: nothing changes
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<form method="post">' in page.text and data["lead_id"] in page.text
    assert page.headers["cache-control"] == "no-store"
    assert await status_of(api, data["assignment_id"]) == "open"

    done = await api.client.post(accept)
    assert done.status_code == 200, done.text
    assert "accepted" in done.text
    seen = await wait_for_record(
        kafka_bootstrap, api.topics.activity, lambda r: r["lead_id"] == data["lead_id"]
    )
    [record] = [r for r in seen if r["lead_id"] == data["lead_id"]]
    assert (record["kind"], record["rep_id"], record["assignment_id"]) == (
        "accepted", ada["id"], data["assignment_id"],
    )  # fmt: skip

    again = await api.client.post(accept)  # used: a page saying so, nothing recorded
    assert again.status_code == 410 and "already used" in again.text
    assert (await api.client.get(accept)).status_code == 410
    assert len(await activities(api, kafka_bootstrap, data["lead_id"])) == 1

    contacted = await api.client.post(path_of(links["contacted"]))
    assert contacted.status_code == 200
    await wait_until(
        lambda: _is(api, data["assignment_id"], "contacted"), "contacted closes the slot"
    )


async def _is(api: Api, assignment_id: str, status: str) -> bool:
    return await status_of(api, assignment_id) == status


async def test_reject_link_asks_for_a_disposition_and_records_it(
    api: Api, producer, receiver, kafka_bootstrap
) -> None:
    await api.rep(receiver, "Ada")
    data = await assigned(api, producer, receiver)
    reject = path_of(data["links"]["reject"])

    form = await api.client.get(reject)
    for code in Disposition:
        assert f'value="{code.value}"' in form.text
    missing = await api.client.post(reject, data={"disposition": "vibes"})
    assert missing.status_code == 400 and "Choose" in missing.text
    assert await status_of(api, data["assignment_id"]) == "open"  # nothing spent

    done = await api.client.post(reject, data={"disposition": "no_budget", "note": "Q3 maybe"})
    assert done.status_code == 200 and "no budget" in done.text
    seen = await wait_for_record(
        kafka_bootstrap, api.topics.activity, lambda r: r["lead_id"] == data["lead_id"]
    )
    record = seen[-1]
    assert (record["kind"], record["disposition"], record["reason"]) == (
        "rejected", "no_budget", "Q3 maybe",
    )  # fmt: skip
    assert await status_of(api, data["assignment_id"]) == "rejected"
    # The accept link of a rejected lead no longer acts.
    late = await api.client.post(path_of(data["links"]["accept"]))
    assert late.status_code == 409 and "Nothing was changed" in late.text


async def test_expired_tampered_and_foreign_links_change_nothing(
    api: Api, producer, receiver, kafka_bootstrap
) -> None:
    ada, bob = await api.rep(receiver, "Ada"), await api.rep(receiver, "Bob")
    await pool_for_everyone(api, [ada["id"], bob["id"]])
    data = await assigned(api, producer, receiver)
    signer = api.service.settings.link_signer
    ids = [uuid.UUID(data[k]) for k in ("assignment_id", "rep_id")]

    old = signer.sign(*ids, LinkAction.ACCEPT, utcnow() - timedelta(days=8))
    token = path_of(data["links"]["accept"]).rsplit("/", 1)[1]
    payload, signature = token.split(".")
    tampered = f"{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{signature}"
    for bad, status, words in (
        (old, 410, "expired"),
        (tampered, 403, "altered"),
        ("not-a-link", 400, "not valid"),
    ):
        for method in ("GET", "POST"):
            response = await api.client.request(method, f"/links/{bad}")
            assert (response.status_code, words in response.text) == (status, True), bad

    await breach(api, producer, data)  # taken back and given to the other rep
    await next_delivery(receiver)
    await next_delivery(receiver)
    foreign = await api.client.post(path_of(data["links"]["contacted"]))
    assert foreign.status_code == 409 and "someone else" in foreign.text
    assert await status_of(api, data["assignment_id"]) == "taken_back"
    assert await activities(api, kafka_bootstrap, data["lead_id"]) == []


async def test_assignment_reaches_slack_as_block_kit_within_the_documented_limits(
    api: Api, producer, receiver
) -> None:
    with WebhookReceiver() as slack:
        ada = await api.rep(receiver, "Ada", slack_webhook_url=f"{slack.url}/T0/B0/ada")
        assert ada["slack_webhook_url"] == f"{slack.url}/T0/B0/ada"
        long_title = "Head of <Operations> & " * 200
        data = await assigned(
            api, producer, receiver,
            reason="pricing x3 " * 500,
            traits={"name": "Kim Lee", "company": "Acme", "title": long_title},
        )  # fmt: skip
        delivery = await next_delivery(slack)
        assert delivery.path == "/T0/B0/ada"
        assert delivery.headers["content-type"].startswith("application/json")
        message, problems = checked(delivery)
        assert problems == []
        assert "Kim Lee (Acme)" in message["text"]
        [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
        urls = {e["action_id"]: e["url"] for e in actions["elements"]}
        assert urls == {f"baton_{a}": data["links"][a] for a in ("accept", "contacted", "reject")}
        facts = " ".join(f["text"] for b in message["blocks"] for f in b.get("fields", []))
        assert "SLA due" in facts and str(int(_ts(data["sla_due_at"]))) in facts


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def test_a_pools_slack_gets_members_assignments_through_the_outbox(
    api: Api, producer, receiver
) -> None:
    with WebhookReceiver(status=500) as slack:
        ada = await api.rep(receiver, "Ada")
        pool = await pool_for_everyone(api, [ada["id"]], slack_webhook_url=f"{slack.url}/team")
        assert pool["slack_webhook_url"] == f"{slack.url}/team"
        data = await assigned(api, producer, receiver)
        for _ in range(3):  # the first try and the schedule's two retries, then dead
            assert (await next_delivery(slack)).path == "/team"

        async def dead() -> list[dict]:
            items = (await api.call("GET", "/v1/webhooks/dead", expect=200)).json()["items"]
            return [i for i in items if i["message_id"] == f"slack_{data['assignment_id']}"]

        [row] = await wait_until(dead, "the Slack message in the dead letters")
        slack.status = 200
        await api.call("POST", f"/v1/webhooks/dead/{row['id']}/replay", expect=202)
        message, problems = checked(await next_delivery(slack))
        assert problems == [] and message["blocks"]
        await no_delivery(slack, within=0.5)
        cleared = await api.call(
            "PATCH", f"/v1/pools/{pool['id']}", json={"slack_webhook_url": None}, expect=200
        )
        assert cleared.json()["slack_webhook_url"] is None
