"""Every router list a page at a time, on a running router (real Kafka and PostgreSQL):
following ``next`` to the end sees every item exactly once, the ``Link`` header says the
same, and a page size above the maximum or a cursor the list did not issue is a 422."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from baton_shared.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from tests.router import test_router_api as base
from tests.router.test_router_api import Api, feed, next_delivery, transition
from tests.support.pages import items, walk_list

pytestmark = pytest.mark.integration

api = base.api
receiver = base.receiver


async def walk(api: Api, path: str, limit: int | None = None) -> list[list[dict[str, Any]]]:
    return await walk_list(lambda url: api.call("GET", url), path, limit)


async def test_reps_page_by_page_each_exactly_once_in_creation_order(api: Api, receiver) -> None:
    created = [(await api.rep(receiver, f"Rep{i}"))["id"] for i in range(7)]
    pages = await walk(api, "/v1/reps", limit=3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert items(pages) == created
    exact = await walk(api, "/v1/reps", limit=7)  # a last page that is exactly full
    assert [len(p) for p in exact] == [7]


async def test_every_configuration_list_pages(api: Api, receiver) -> None:
    rep = await api.rep(receiver, "Ada")
    pools = [
        (await api.call("POST", "/v1/pools", json={"name": f"pool-{i}"}, expect=201)).json()
        for i in range(3)
    ]
    rules = [
        (
            await api.call(
                "POST",
                "/v1/rules",
                json={
                    "name": f"rule-{i}",
                    "pool_id": pools[0]["id"],
                    "position": i % 2,
                    "conditions": [{"field": "region", "op": "in", "value": ["emea"]}],
                },
                expect=201,
            )
        ).json()
        for i in range(3)
    ]
    for domain in ("c.com", "a.com", "b.com"):
        await api.call("PUT", f"/v1/accounts/{domain}", json={"rep_id": rep["id"]}, expect=200)
    for i in range(3):
        track = {"name": f"track-{i}", "position": 1, "webhook_url": f"{receiver.url}/t{i}"}
        await api.call("POST", "/v1/nurture-tracks", json=track, expect=201)

    assert items(await walk(api, "/v1/pools", limit=2)) == [p["id"] for p in pools]
    by_position = sorted(rules, key=lambda r: r["position"])  # stable: creation order after
    assert items(await walk(api, "/v1/rules", limit=2)) == [r["id"] for r in by_position]
    assert items(await walk(api, "/v1/accounts", limit=2), "domain") == ["a.com", "b.com", "c.com"]
    tracks = items(await walk(api, "/v1/nurture-tracks", limit=2), "name")
    assert tracks == ["track-0", "track-1", "track-2"]


async def test_a_reps_leads_page_newest_first(api: Api, producer, receiver) -> None:
    ada = await api.rep(receiver, "Ada")
    sqls = [transition() for _ in range(3)]
    for sql in sqls:
        await feed(api, producer, sql)
    for _ in sqls:
        await next_delivery(receiver)
    pages = await walk(api, f"/v1/reps/{ada['id']}/leads", limit=2)
    assert [len(p) for p in pages] == [2, 1]
    leads = [item for page in pages for item in page]
    assert sorted(items(pages, "lead_id")) == sorted(s.lead_id for s in sqls)
    assigned = [lead["assigned_at"] for lead in leads]
    assert assigned == sorted(assigned, reverse=True)
    one = await walk(api, f"/v1/leads/{sqls[0].lead_id}/assignments", limit=1)
    assert items(one, "lead_id") == [sqls[0].lead_id]


async def test_dead_letters_are_not_capped(api: Api, receiver) -> None:
    """More dead letters than a page: all of them, newest first, over two pages."""
    async with api.service.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO router.outbox (kind, message_id, payload, status, attempts, "
                "target_url, last_error) SELECT 'webhook', 'dead-' || g, '{}'::jsonb, 'dead', "
                "3, :url, 'HTTP 500' FROM generate_series(1, :n) AS g"
            ),
            {"url": f"{receiver.url}/gone", "n": DEFAULT_PAGE_SIZE + 50},
        )
    pages = await walk(api, "/v1/webhooks/dead")
    assert [len(p) for p in pages] == [DEFAULT_PAGE_SIZE, 50]
    ids = items(pages)
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == DEFAULT_PAGE_SIZE + 50


async def test_a_page_larger_than_the_maximum_or_a_foreign_cursor_is_refused(api: Api) -> None:
    await api.call("GET", f"/v1/reps?limit={MAX_PAGE_SIZE}", expect=200)
    too_many = await api.call("GET", f"/v1/reps?limit={MAX_PAGE_SIZE + 1}", expect=422)
    assert "limit" in too_many.text
    await api.call("GET", "/v1/pools?limit=0", expect=422)
    wrong_shape = base64.urlsafe_b64encode(orjson.dumps(["not a time", 7])).decode()
    for cursor in ("%%%", "bm90IGpzb24", wrong_shape):
        refused = await api.call("GET", f"/v1/reps?cursor={cursor}", expect=422)
        assert "cursor" in refused.text, refused.text
