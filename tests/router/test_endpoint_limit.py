"""The per-endpoint webhook concurrency limit holds across routers sharing the database:
two dispatchers (two engines, as two router processes have) against one slow receiver
never have more than the limit in flight together."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from baton_router.dispatcher import Dispatcher
from baton_router.signing import new_secret
from baton_router.store import Stores, open_stores
from baton_router.store.outbox import Claimed
from baton_shared.clock import utcnow
from baton_shared.database import make_sessionmaker
from tests.router.test_router_store import ASSIGNMENTS_TOPIC, transition

pytestmark = pytest.mark.integration

LIMIT = 2
HOLD_SECONDS = 0.15  # how long the receiver takes to answer each webhook


class SlowReceiver:
    """Answers every webhook after ``HOLD_SECONDS`` and records the most it ever had
    in flight at once."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.received: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(HOLD_SECONDS)
            self.received.append(request.headers["webhook-id"])
            return web.Response(status=204)
        finally:
            self.in_flight -= 1


@pytest.fixture
async def slow_receiver() -> AsyncIterator[tuple[SlowReceiver, str]]:
    receiver = SlowReceiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield receiver, f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


def limited_store(engine: AsyncEngine, fast_lease: bool = False) -> Stores:
    return open_stores(
        make_sessionmaker(engine),
        ASSIGNMENTS_TOPIC,
        fast_lease=timedelta(seconds=60) if fast_lease else None,
        per_endpoint=LIMIT,
    )


async def pending_webhooks(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                text(
                    "SELECT count(*) FROM router.outbox WHERE kind = 'webhook' "
                    "AND status <> 'delivered'"
                )
            )
            or 0
        )


async def test_two_dispatchers_together_keep_an_endpoint_at_its_limit(
    engines: tuple[AsyncEngine, AsyncEngine], slow_receiver: tuple[SlowReceiver, str]
) -> None:
    receiver, url = slow_receiver
    first, second = (limited_store(e) for e in engines)
    rep = await first.config.create_rep("Ada", "ada@example.com", url, new_secret())
    leads = [transition() for _ in range(10)]
    await first.routing.route_batch(leads, utcnow())  # 10 webhooks to one endpoint, unleased
    async with engines[0].begin() as conn:  # the Kafka copies are not what this is about
        await conn.execute(
            text("UPDATE router.outbox SET status = 'delivered' WHERE kind = 'kafka'")
        )

    async with aiohttp.ClientSession() as http:
        dispatchers = [
            # Each one alone would allow LIMIT in flight: together, without the shared
            # count, they would have twice that.
            Dispatcher(store.outbox, None, http, (0.1,), 0.05, per_endpoint=LIMIT)  # type: ignore[arg-type]
            for store in (first, second)
        ]
        tasks = [asyncio.create_task(d.run()) for d in dispatchers]
        try:
            async with asyncio.timeout(30):
                while await pending_webhooks(engines[0]):
                    await asyncio.sleep(0.05)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    assert sorted(receiver.received) == sorted(
        f"msg_{a}" for a in await assignment_ids(engines[0], rep.id)
    )
    assert receiver.peak == LIMIT


async def assignment_ids(engine: AsyncEngine, rep_id: uuid.UUID) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id::text FROM router.assignments WHERE rep_id = :r"), {"r": rep_id}
        )
        return [r[0] for r in rows.all()]


async def test_routing_leases_only_the_free_slots_and_other_routers_claim_none(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    """The fast path (rows leased in the routing transaction) counts too: with the limit
    reached there, another router's claim leaves the endpoint's remaining row alone."""
    router, other = limited_store(engines[0], fast_lease=True), limited_store(engines[1])
    rep = await router.config.create_rep(
        "Ada", "ada@example.com", "http://127.0.0.1:9/hook", new_secret()
    )
    routed = await router.routing.route_batch([transition() for _ in range(3)], utcnow())

    fresh = [leased for r in routed for leased in r.outbox]
    assert sorted(leased.row.kind for leased in fresh) == ["kafka"] * 3 + ["webhook"] * LIMIT
    assert await other.outbox.claim_due(utcnow(), timedelta(seconds=60)) == Claimed([], True)

    # One delivery finishes: its slot frees, and the row left waiting can be claimed.
    webhook = next(leased.row for leased in fresh if leased.row.kind == "webhook")
    await router.outbox.mark_delivered_many([webhook.id], utcnow())
    [claimed] = (await other.outbox.claim_due(utcnow(), timedelta(seconds=60))).rows
    assert (claimed.row.kind, claimed.row.rep_id) == ("webhook", rep.id)
