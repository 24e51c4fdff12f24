"""The outbox in PostgreSQL: rows a routing transaction wrote, leased, delivered, retried,
dead-lettered and replayed.

A routing transaction inserts its rows with :func:`insert_rows` (already leased to the
router that wrote them when ``fast_lease`` is set, so its dispatcher delivers them
straight from the commit). Everything else reaches a dispatcher through
:meth:`OutboxStore.claim_due`, which leases due rows (``FOR UPDATE SKIP LOCKED``; a lease
that expires lets any router take the row over). At most ``per_endpoint`` webhooks per
endpoint are in flight across every router sharing the database, counted under
``OUTBOX_LOCK``. The dispatcher then marks each row delivered, failed (retry at a time)
or dead; an operator's replay puts a dead row back in line.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from baton_router.store.locks import OUTBOX_LOCK
from baton_router.tables import NurtureTrack, OutboxRow, Rep

KAFKA_ENDPOINT = "kafka"
#: Outbox kinds delivered over HTTP: signed webhooks, and Slack incoming-webhook messages
#: (``target_url``, the Slack URL, copied in when the row was written).
HTTP_KINDS = ("webhook", "slack")


@dataclass(frozen=True)
class Leased:
    """An outbox row this router now owns for a while, and where a webhook row goes."""

    row: Any  # the outbox row (a Core Row with OutboxRow's column names)
    target: tuple[str, str] | None  # webhook URL and signing secret


@dataclass(frozen=True)
class Claimed:
    """Rows a claim leased, and whether due rows were left (limits, batch size)."""

    rows: list[Leased]
    waiting: bool = False


def endpoint_key(kind: str, rep_id: uuid.UUID | None, track_id: uuid.UUID | None) -> str:
    """Where an outbox row goes, for concurrency limits and metrics."""
    if kind not in HTTP_KINDS:
        return KAFKA_ENDPOINT
    if kind == "slack":
        return f"slack:{rep_id}"
    if rep_id is not None:
        return f"rep:{rep_id}"
    return f"track:{track_id}"


def outbox_values(**fields: Any) -> dict[str, Any]:
    """An outbox row to insert, with the columns a row may leave empty."""
    defaults = {"rep_id": None, "topic": None, "key": None, "track_id": None, "target_url": None}
    return defaults | fields


def webhook_row(message_id: str, rep_id: uuid.UUID, payload: dict[str, Any]) -> OutboxRow:
    """A signed webhook to a rep, added to the caller's transaction."""
    return OutboxRow(kind="webhook", message_id=message_id, rep_id=rep_id, payload=payload)


def target_of(
    kind: str,
    owner: uuid.UUID | None,
    target_url: str | None,
    targets: dict[uuid.UUID, tuple[str, str] | None],
) -> tuple[str, str] | None:
    """Where a row goes: a Slack row to its own URL (nothing to sign with), a webhook to
    its rep's or track's endpoint and secret (None: disabled or deleted)."""
    if kind == "slack":
        return (target_url, "") if target_url else None
    return targets.get(owner) if owner is not None else None


def engine_of(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    """The engine a sessionmaker is bound to (for Core statements without a session)."""
    engine = sessions.kw.get("bind")
    assert isinstance(engine, AsyncEngine), "the sessionmaker must be bound to an engine"
    return engine


class _Room(Counter[str]):
    """Free delivery slots per endpoint; an endpoint not mentioned has all of them."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def __missing__(self, key: str) -> int:
        return self.limit


async def endpoint_room(
    conn: AsyncConnection | AsyncSession,
    now: datetime,
    per_endpoint: int | None,
    locked: bool = False,
) -> Counter[str] | None:
    """How many more webhooks each endpoint may have in flight, counted over every
    router sharing this database: ``per_endpoint`` minus its rows leased and not yet
    finished. Takes ``OUTBOX_LOCK`` (to commit; ``locked``: the caller has) so two
    routers never both see the last free slot. None when there is no limit."""
    if per_endpoint is None:
        return None
    if not locked:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": OUTBOX_LOCK})
    in_flight = (
        await conn.execute(
            text(
                "SELECT kind, rep_id, track_id, count(*) FROM router.outbox "
                "WHERE status = 'pending' AND kind IN ('webhook', 'slack') "
                "AND lease_until > :now GROUP BY kind, rep_id, track_id"
            ),
            {"now": now},
        )
    ).all()
    room: Counter[str] = _Room(per_endpoint)
    for kind, rep_id, track_id, n in in_flight:
        room[endpoint_key(kind, rep_id, track_id)] -= n
    return room


async def insert_rows(
    session: AsyncSession,
    rows: list[dict[str, Any]],
    now: datetime,
    lease: timedelta | None,
    per_endpoint: int | None,
    targets: dict[uuid.UUID, tuple[str, str] | None],
) -> list[Leased]:
    """Insert ``rows`` in the routing transaction. With ``lease`` (the caller holds
    ``OUTBOX_LOCK``), those with a free slot at their endpoint are leased to this router
    and returned for its dispatcher; the rest are left for the claim loop."""
    outbox = OutboxRow.__table__
    if lease is None:
        await session.execute(insert(outbox), rows)
        return []
    room = await endpoint_room(session, now, per_endpoint, locked=True)
    leased = []
    for row in rows:
        key = endpoint_key(row["kind"], row["rep_id"], row["track_id"])
        if room is None or key == KAFKA_ENDPOINT or room[key] > 0:
            row["lease_until"] = now + lease
            leased.append(row)
            if room is not None:
                room[key] -= 1
        else:
            row["lease_until"] = None  # endpoint at its limit: the claim loop's
    # Only the ids come back: the rows' payloads are here already.
    ids = (
        await session.execute(insert(outbox).returning(outbox.c.id, outbox.c.message_id), rows)
    ).all()
    by_message = {message_id: row_id for row_id, message_id in ids}
    return [
        # The row as the dispatcher reads it (the columns it uses).
        Leased(
            SimpleNamespace(attempts=0, **row, id=by_message[row["message_id"]]),
            target_of(row["kind"], row["rep_id"], row["target_url"], targets),
        )
        for row in leased
    ]


class OutboxStore:
    """Leasing and settling outbox rows, and the operator's dead-letter list."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], per_endpoint: int | None = None):
        self._sessions = sessions
        self._engine = engine_of(sessions)
        # Webhook deliveries in flight per endpoint across every router sharing this
        # database (leased, not finished); None: no limit.
        self.per_endpoint = per_endpoint

    async def claim_due(
        self,
        now: datetime,
        lease: timedelta,
        limit: int = 50,
        room: Callable[[str], int] | None = None,
    ) -> Claimed:
        """Claim due outbox rows for ``lease``; another dispatcher skips them meanwhile,
        and takes them over if this one dies before finishing. At most ``room(endpoint)``
        rows per endpoint (see :func:`endpoint_key`) are claimed, and with
        ``per_endpoint`` set never more than that many in flight per endpoint across all
        routers; the rest stay free (``Claimed.waiting``: some were due but left).
        Each comes with its webhook target (URL and secret; None when disabled/deleted)."""
        outbox = OutboxRow.__table__
        async with self._engine.begin() as conn:
            limits = await endpoint_room(conn, now, self.per_endpoint)
            due = (
                await conn.execute(
                    select(outbox.c.id, outbox.c.kind, outbox.c.rep_id, outbox.c.track_id)
                    .where(
                        outbox.c.status == "pending",
                        outbox.c.next_attempt_at <= now,
                        (outbox.c.lease_until.is_(None)) | (outbox.c.lease_until < now),
                    )
                    .order_by(outbox.c.id)
                    .limit(max(limit * 4, 100))
                    .with_for_update(skip_locked=True)
                )
            ).all()
            taken: Counter[str] = Counter()
            chosen = []
            waiting = False
            for row_id, kind, rep_id, track_id in due:
                key = endpoint_key(kind, rep_id, track_id)
                if (room is not None and taken[key] >= room(key)) or (
                    # every router together has the endpoint's limit in flight
                    limits is not None and key != KAFKA_ENDPOINT and taken[key] >= limits[key]
                ):
                    waiting = True
                    continue
                if len(chosen) >= limit:
                    waiting = True
                    break
                taken[key] += 1
                chosen.append(row_id)
            if not chosen:
                return Claimed([], waiting)
            rows = (
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(chosen))
                    .values(lease_until=now + lease)
                    .returning(*outbox.c)
                )
            ).all()
            targets = await _targets(
                conn,
                {r.rep_id for r in rows if r.kind == "webhook" and r.rep_id is not None},
                {r.track_id for r in rows if r.kind == "webhook" and r.track_id is not None},
            )
        leased = [
            Leased(row, target_of(row.kind, row.rep_id or row.track_id, row.target_url, targets))
            for row in sorted(rows, key=lambda r: r.id)
        ]
        return Claimed(leased, waiting)

    async def release_many(self, row_ids: list[int]) -> None:
        """Give leased rows back untried, for any router's next lease."""
        await self._update(row_ids, lease_until=None)

    async def mark_delivered_many(self, row_ids: list[int], now: datetime) -> None:
        await self._update(
            row_ids,
            status="delivered",
            delivered_at=now,
            lease_until=None,
            attempts=OutboxRow.__table__.c.attempts + 1,
        )

    async def mark_failed(self, row_id: int, error: str, retry_at: datetime | None) -> None:
        """One failed try: retried at ``retry_at``, or dead when that is None."""
        values: dict[str, Any] = {
            "last_error": error[:2000],
            "lease_until": None,
            "attempts": OutboxRow.__table__.c.attempts + 1,
        }
        if retry_at is None:
            values["status"] = "dead"
        else:
            values["next_attempt_at"] = retry_at
        await self._update([row_id], **values)

    async def _update(self, row_ids: list[int], **values: Any) -> None:
        if not row_ids:
            return
        outbox = OutboxRow.__table__
        async with self._engine.begin() as conn:
            await conn.execute(update(outbox).where(outbox.c.id.in_(row_ids)).values(**values))

    async def disable_webhook(self, rep_id: uuid.UUID, now: datetime) -> None:
        """The rep's endpoint answered 410 Gone: nothing more is sent to it."""
        async with self._engine.begin() as conn:
            await conn.execute(update(Rep).where(Rep.id == rep_id).values(webhook_disabled_at=now))

    async def replay(self, row_id: int, now: datetime) -> OutboxRow | None:
        """Put a dead message back in line (attempts start again; a disabled rep endpoint
        is re-enabled, since the operator asked for delivery)."""
        async with self._sessions.begin() as session:
            row = await session.get(OutboxRow, row_id, with_for_update=True)
            if row is None or row.status != "dead":
                return None
            row.status, row.attempts, row.next_attempt_at = "pending", 0, now
            row.lease_until = None
            if row.kind == "webhook" and row.rep_id is not None:
                await session.execute(
                    update(Rep).where(Rep.id == row.rep_id).values(webhook_disabled_at=None)
                )
            return row


async def _targets(
    conn: AsyncConnection, rep_ids: set[uuid.UUID], track_ids: set[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str] | None]:
    """Where each rep's and track's webhooks go, and their secrets (None: disabled)."""
    out: dict[uuid.UUID, tuple[str, str] | None] = {}
    if rep_ids:
        for rep_id, url, secret, disabled in (
            await conn.execute(
                select(Rep.id, Rep.webhook_url, Rep.webhook_secret, Rep.webhook_disabled_at).where(
                    Rep.id.in_(rep_ids)
                )
            )
        ).all():
            out[rep_id] = None if disabled else (url, secret)
    if track_ids:
        for track_id, url, secret in (
            await conn.execute(
                select(
                    NurtureTrack.id, NurtureTrack.webhook_url, NurtureTrack.webhook_secret
                ).where(NurtureTrack.id.in_(track_ids))
            )
        ).all():
            out[track_id] = (url, secret)
    return out
