"""Delivers the outbox: signed webhooks to reps and records to ``leads.assignments``.

Each loop leases the due rows (so a second router skips them), delivers them,
and records the outcome: delivered, retry later per the schedule, or dead
(schedule exhausted, or the endpoint answered 410 Gone and is disabled).
Delivery is at-least-once; the ``webhook-id`` lets receivers drop repeats.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Histogram

from baton_router.retry import next_attempt_at
from baton_router.signing import signed_headers
from baton_router.store import RouterStore
from baton_router.tables import OutboxRow
from baton_shared.clock import utcnow
from baton_shared.logs import get_logger

log = get_logger(__name__)

ATTEMPTS = Counter("baton_router_webhook_attempts_total", "Webhook delivery attempts", ["outcome"])
DEAD = Counter("baton_router_outbox_dead_total", "Outbox messages moved to dead letter", ["kind"])
TO_DELIVERED = Histogram(
    "baton_router_transition_to_webhook_seconds",
    "From the lead qualifying (transition event time) to the rep's webhook accepted",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
LEASE = timedelta(seconds=60)


class DeliveryFailed(Exception):
    def __init__(self, message: str, retry_after: float | None = None, gone: bool = False):
        super().__init__(message)
        self.retry_after, self.gone = retry_after, gone


class Dispatcher:
    def __init__(
        self,
        store: RouterStore,
        producer: AIOKafkaProducer,
        http: httpx.AsyncClient,
        retry_schedule: tuple[float, ...],
        poll_seconds: float,
    ):
        self._store, self._producer, self._http = store, producer, http
        self._schedule, self._poll = retry_schedule, poll_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New rows were committed: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                rows = await self._store.lease_due(utcnow(), LEASE)
                await asyncio.gather(*(self._deliver(row) for row in rows))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("dispatch_loop_failed", error=f"{type(exc).__name__}: {exc}")
                rows = []
            if not rows:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self._poll)
                except TimeoutError:
                    pass

    async def _deliver(self, row: OutboxRow) -> None:
        try:
            if row.kind == "webhook":
                await self._send_webhook(row)
            else:
                await self._producer.send_and_wait(
                    row.topic,
                    orjson.dumps(row.payload),  # type: ignore[arg-type]
                    key=row.key.encode() if row.key else None,
                )
        except DeliveryFailed as exc:
            await self._failed(row, str(exc), exc.retry_after, exc.gone)
            return
        except Exception as exc:
            await self._failed(row, f"{type(exc).__name__}: {exc}", None, False)
            return
        await self._store.mark_delivered(row.id, utcnow())

    async def _send_webhook(self, row: OutboxRow) -> None:
        assert row.rep_id is not None
        rep = await self._store.rep(row.rep_id)
        if rep is None or rep.webhook_disabled_at is not None:
            raise DeliveryFailed("endpoint disabled", gone=True)
        body = orjson.dumps(row.payload)
        headers = signed_headers(rep.webhook_secret, row.message_id, int(time.time()), body)
        try:
            response = await self._http.post(rep.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            ATTEMPTS.labels(outcome="error").inc()
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 410:
            ATTEMPTS.labels(outcome="gone").inc()
            await self._store.disable_webhook(rep.id, utcnow())
            raise DeliveryFailed("410 Gone: endpoint disabled", gone=True)
        if not response.is_success:
            ATTEMPTS.labels(outcome=f"http_{response.status_code // 100}xx").inc()
            raise DeliveryFailed(f"HTTP {response.status_code}", retry_after=_retry_after(response))
        ATTEMPTS.labels(outcome="delivered").inc()
        qualified = datetime.fromisoformat(row.payload["data"]["qualified_at"])
        TO_DELIVERED.observe(max(0.0, (utcnow() - qualified).total_seconds()))
        log.info("webhook_delivered", rep_id=str(rep.id), message_id=row.message_id)

    async def _failed(
        self, row: OutboxRow, error: str, retry_after: float | None, gone: bool
    ) -> None:
        retry_at = (
            None
            if gone
            else next_attempt_at(row.attempts + 1, utcnow(), self._schedule, retry_after)
        )
        if retry_at is None:
            DEAD.labels(kind=row.kind).inc()
            log.warning("outbox_dead", message_id=row.message_id, kind=row.kind, error=error)
        else:
            log.info(
                "outbox_retry",
                message_id=row.message_id,
                kind=row.kind,
                error=error,
                retry_at=retry_at.isoformat(),
            )
        await self._store.mark_failed(row.id, error, retry_at)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
