"""Delivers the outbox: signed webhooks (to reps, managers and nurture tracks), Slack
messages (incoming webhooks, through ``slack_sdk``) and records to ``leads.assignments``.

The loop leases due rows (so a second router skips them, and takes them over if this
one dies), starts one task per row, and records each outcome: delivered; retry later
per the schedule (±10 % jitter, a longer ``Retry-After`` honoured); or dead (schedule
exhausted, or the endpoint answered 410 Gone and is disabled). Dead rows wait for an
operator's replay (``POST /v1/webhooks/dead/{id}/replay``).

At most ``per_endpoint`` deliveries to one endpoint are in flight at a time, counted over
every router sharing the database (``OutboxStore.claim_due``: leased, unfinished rows per
endpoint, under an advisory lock): rows for a busy endpoint are not leased (or are handed
back) until a slot frees, so one slow receiver neither gets hammered nor delays everybody
else's webhooks.
Delivery is at-least-once; the ``webhook-id`` lets receivers drop repeats. A webhook is
signed with the secrets its endpoint's sealed value holds (``secret_box.py``): the
current one, and a rotated-out one while its grace period lasts.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter as Tally
from collections.abc import Awaitable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from baton_router.metrics import (
    DISPATCH_WAIT,
    OUTBOX_DEAD,
    TO_DELIVERED,
    WEBHOOK_ATTEMPTS,
    WEBHOOK_FAILURES,
    WEBHOOK_REQUEST,
)
from baton_router.retry import next_attempt_at
from baton_router.secret_box import SecretBox
from baton_router.signing import signed_headers
from baton_router.store.outbox import (
    HTTP_KINDS,
    KAFKA_ENDPOINT,
    Leased,
    OutboxStore,
    endpoint_key,
)
from baton_router.tables import OutboxRow
from baton_router.webhook_targets import Answer, TargetPolicy, UnsafeTarget, post, refusal_in
from baton_shared.clock import utcnow
from baton_shared.logs import get_logger

log = get_logger(__name__)

LEASE = timedelta(seconds=60)


class DeliveryFailed(Exception):
    def __init__(self, message: str, retry_after: float | None = None, gone: bool = False):
        super().__init__(message)
        self.retry_after, self.gone = retry_after, gone


def endpoint_of(row: OutboxRow) -> str:
    """The concurrency and metrics key of a row's destination."""
    return endpoint_key(row.kind, row.rep_id, row.track_id)


class Dispatcher:
    def __init__(
        self,
        store: OutboxStore,
        producer: AIOKafkaProducer,
        http: aiohttp.ClientSession,
        retry_schedule: tuple[float, ...],
        poll_seconds: float,
        per_endpoint: int = 4,
        max_in_flight: int = 200,
        lease: timedelta = LEASE,
        targets: TargetPolicy | None = None,
        box: SecretBox | None = None,
    ):
        self._store, self._producer, self._http = store, producer, http
        self._targets = targets or TargetPolicy()
        self._box = box or SecretBox.local()
        self._schedule, self._poll = retry_schedule, poll_seconds
        self._per_endpoint, self._max_in_flight = per_endpoint, max_in_flight
        self._lease = lease
        self._delivered: list[int] = []
        self._busy: Tally[str] = Tally()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        # Rows may be due that nobody leased yet: claim on the next turn. Unset, a turn
        # only records finished deliveries (the claim query waits for the poll).
        self._claim = True
        self._waiting = False

    def wake(self) -> None:
        """New rows were committed unleased (or handed back): claim now, not at the next
        poll."""
        self._claim = True
        self._wake.set()

    async def run(self) -> None:
        """Each turn records the deliveries that finished (at once: the per-endpoint
        limit counts a delivered row as in flight until then), and claims due rows when
        there may be some: after ``wake``, while a claim left rows waiting for a slot,
        and every ``poll_seconds`` (rows of routers that died, retries coming due).
        Rows this router's consumer commits are not claimed at all: ``submit`` hands
        them over from the commit."""
        try:
            while True:
                self._wake.clear()
                failed = False
                try:
                    await self._flush_delivered()
                    if self._claim:
                        self._claim = False
                        await self._start_due()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._claim, failed = True, True
                    log.error("dispatch_loop_failed", error=f"{type(exc).__name__}: {exc}")
                if self._claim and not failed:
                    await asyncio.sleep(0)  # let the deliveries just started run first
                    continue
                # Not ``asyncio.wait_for``: on Python 3.11 it drops a cancellation that
                # arrives in the turn the wake is set (a delivery finishing as the router
                # stops) and this loop would never end. ``asyncio.timeout`` counts it.
                try:
                    async with asyncio.timeout(self._poll):
                        await self._wake.wait()
                except TimeoutError:
                    self._claim = True
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Cancel deliveries in flight (their leases expire; they are retried) and record
        the ones that finished."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(self._flush_delivered(), 5)
        except Exception as exc:  # delivered rows not marked are delivered again: harmless
            log.warning("dispatcher_flush_failed", error=f"{type(exc).__name__}: {exc}")

    async def _flush_delivered(self) -> None:
        """Deliveries that finished since the last turn: one UPDATE for all of them."""
        if self._delivered:
            batch, self._delivered = self._delivered, []
            await self._store.mark_delivered_many(batch, utcnow())

    def _room(self, endpoint: str) -> int:
        if endpoint == KAFKA_ENDPOINT:
            return self._max_in_flight
        return self._per_endpoint - self._busy[endpoint]

    async def _start_due(self) -> int:
        room = self._max_in_flight - len(self._tasks)
        if room <= 0:
            self._waiting = True  # claim again as soon as a delivery finishes
            return 0
        claimed = await self._store.claim_due(
            utcnow(), self._lease, limit=min(room, 200), room=self._room
        )
        rows = claimed.rows
        # Rows left for a slot: claim again when one of ours frees (another router's
        # freeing is seen at the next poll); left only for the batch size: at once.
        self._waiting = claimed.waiting
        if claimed.waiting and rows:
            self._claim = True
        ready = time.monotonic()
        records = [leased.row for leased in rows if leased.row.kind not in HTTP_KINDS]
        if records:
            self._spawn(KAFKA_ENDPOINT, self._publish(records))
        for leased in rows:
            if leased.row.kind in HTTP_KINDS:
                endpoint = endpoint_of(leased.row)
                self._spawn(endpoint, self._deliver(leased.row, endpoint, leased.target, ready))
        return len(rows)

    async def submit(self, rows: list[Leased]) -> None:
        """Rows just committed already leased to this router: deliver them now. Rows for
        an endpoint at its limit are handed back for the regular lease loop."""
        ready = time.monotonic()
        records = [leased.row for leased in rows if leased.row.kind not in HTTP_KINDS]
        if records:
            self._spawn(KAFKA_ENDPOINT, self._publish(records))
        back = []
        for leased in rows:
            if leased.row.kind not in HTTP_KINDS:
                continue
            endpoint = endpoint_of(leased.row)
            if self._room(endpoint) <= 0:
                back.append(leased.row.id)
                continue
            self._spawn(endpoint, self._deliver(leased.row, endpoint, leased.target, ready))
        if back:
            await self._store.release_many(back)
            self._waiting = True
            self.wake()

    def _spawn(self, endpoint: str, work: Awaitable[None]) -> None:
        self._busy[endpoint] += 1
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done(endpoint))

    def _done(self, endpoint: str):  # type: ignore[no-untyped-def]
        def callback(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self._busy[endpoint] -= 1
            if self._busy[endpoint] <= 0:
                del self._busy[endpoint]
            if self._waiting:
                self._claim = True
            self._wake.set()

        return callback

    async def _publish(self, rows: list[OutboxRow]) -> None:
        """``leads.assignments`` records, all at once: one round of acks."""
        sends = [
            await self._producer.send(
                row.topic,  # type: ignore[arg-type]
                orjson.dumps(row.payload),
                key=row.key.encode() if row.key else None,
            )
            for row in rows
        ]
        results = await asyncio.gather(*sends, return_exceptions=True)
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                await self._failed(
                    row, KAFKA_ENDPOINT, f"{type(result).__name__}: {result}", None, False
                )
            else:
                self._delivered.append(row.id)

    async def _deliver(
        self,
        row: OutboxRow,
        endpoint: str,
        target: tuple[str, str] | None,
        ready: float | None = None,
    ) -> None:
        if ready is not None:
            DISPATCH_WAIT.observe(time.monotonic() - ready)
        try:
            if target is None:
                raise DeliveryFailed("endpoint disabled or deleted", gone=True)
            if row.kind == "slack":
                await self._send_slack(row, endpoint, target[0])
            else:
                await self._send_webhook(row, endpoint, target)
        except DeliveryFailed as exc:
            await self._failed(row, endpoint, str(exc), exc.retry_after, exc.gone)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed(row, endpoint, f"{type(exc).__name__}: {exc}", None, False)
            return
        self._delivered.append(row.id)

    async def _send_webhook(self, row: OutboxRow, endpoint: str, target: tuple[str, str]) -> None:
        url, sealed = target
        body = orjson.dumps(row.payload)
        secrets = self._box.open(sealed).signing(utcnow())
        headers = signed_headers(secrets, row.message_id, int(time.time()), body)
        answer = await self._post(endpoint, url, body, headers)
        if answer.status == 410:
            WEBHOOK_ATTEMPTS.labels(outcome="gone", endpoint=endpoint).inc()
            if row.rep_id is not None:
                await self._store.disable_webhook(row.rep_id, utcnow())
            raise DeliveryFailed("410 Gone: endpoint disabled", gone=True)
        self._check_status(answer, endpoint, "HTTP")
        qualified = row.payload.get("data", {}).get("qualified_at")
        if row.payload.get("type") == "lead.assigned" and qualified:
            elapsed = (utcnow() - datetime.fromisoformat(qualified)).total_seconds()
            TO_DELIVERED.observe(max(0.0, elapsed))
        log.debug("webhook_delivered", endpoint=endpoint, message_id=row.message_id)

    async def _send_slack(self, row: OutboxRow, endpoint: str, url: str) -> None:
        """A Block Kit message (built with ``slack_sdk``, see ``slack.py``) to a Slack
        incoming webhook. Slack answers 200 ``ok``; 429 with ``Retry-After`` when rate
        limited; 404/410 when the channel or the webhook is gone (dead at once: retrying
        cannot help)."""
        headers = {"content-type": "application/json;charset=utf-8"}
        answer = await self._post(endpoint, url, orjson.dumps(row.payload), headers)
        if answer.status in (404, 410):
            WEBHOOK_ATTEMPTS.labels(outcome="gone", endpoint=endpoint).inc()
            raise DeliveryFailed(f"Slack {answer.status} {_text(answer)}", gone=True)
        self._check_status(answer, endpoint, "Slack")
        log.debug("slack_delivered", endpoint=endpoint, message_id=row.message_id)

    async def _post(self, endpoint: str, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """One request (checked target, no redirects, a capped read); a refused target or
        a transport error is a :class:`DeliveryFailed` saying why."""
        started = time.monotonic()
        try:
            answer = await post(self._http, self._targets, url, body, headers)
        except (UnsafeTarget, aiohttp.ClientError, TimeoutError) as exc:
            refused = refusal_in(exc)
            outcome = "refused" if refused else "error"
            WEBHOOK_ATTEMPTS.labels(outcome=outcome, endpoint=endpoint).inc()
            raise DeliveryFailed(refused or f"{type(exc).__name__}: {exc}") from exc
        WEBHOOK_REQUEST.observe(time.monotonic() - started)
        return answer

    def _check_status(self, answer: Answer, endpoint: str, what: str) -> None:
        if not 200 <= answer.status < 300:
            outcome = f"http_{answer.status // 100}xx"
            WEBHOOK_ATTEMPTS.labels(outcome=outcome, endpoint=endpoint).inc()
            retry_after = retry_after_seconds(answer.headers.get("retry-after"), utcnow())
            detail = f"{what} {answer.status}" + (f" {_text(answer)}" if what == "Slack" else "")
            raise DeliveryFailed(detail, retry_after=retry_after)
        WEBHOOK_ATTEMPTS.labels(outcome="delivered", endpoint=endpoint).inc()

    async def _failed(
        self, row: OutboxRow, endpoint: str, error: str, retry_after: float | None, gone: bool
    ) -> None:
        if row.kind in HTTP_KINDS:
            WEBHOOK_FAILURES.labels(endpoint=endpoint).inc()
        retry_at = (
            None
            if gone
            else next_attempt_at(row.attempts + 1, utcnow(), self._schedule, retry_after)
        )
        if retry_at is None:
            OUTBOX_DEAD.labels(kind=row.kind, endpoint=endpoint).inc()
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


def _text(answer: Answer) -> str:
    return answer.body[:200].decode(errors="replace")


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header as seconds from ``now`` (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None
