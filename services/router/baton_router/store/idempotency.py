"""The responses to ``Idempotency-Key`` requests, kept :data:`KEY_TTL` so a retry gets
the first result instead of creating or recording again.

:meth:`IdempotencyStore.claim` inserts the (caller, key) row in a transaction it holds
open while the request runs: a concurrent request with the same key waits on that row
(the primary key), then finds the stored response. :meth:`Claim.keep` stores the
response and commits; a request that fails or is refused keeps nothing (the transaction
rolls back, so a crash never leaves a key stuck).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_router.secret_box import SecretBox
from baton_router.tables import IdempotencyKey

KEY_TTL = timedelta(hours=24)
WAIT_SECONDS = 10  # for a concurrent request with the same key to finish
PRUNE_BATCH = 100  # expired rows removed per claim
LOCK_NOT_AVAILABLE = "55P03"

PRUNE = text(
    """
    DELETE FROM router.idempotency_keys WHERE ctid IN (
      SELECT ctid FROM router.idempotency_keys WHERE expires_at <= :now
      LIMIT :n FOR UPDATE SKIP LOCKED)
    """
)


class KeyInUse(RuntimeError):
    """A request with the same key is still running after :data:`WAIT_SECONDS`."""


@dataclass(frozen=True)
class Stored:
    request_hash: str
    status_code: int
    body: bytes
    media_type: str | None


class Claim:
    """A key this request holds: ``stored`` is set when an earlier request's response
    exists (the caller replays it or refuses a different request)."""

    def __init__(
        self,
        session: AsyncSession,
        caller: str,
        key: str,
        stored: Stored | None,
        box: SecretBox,
    ):
        self._session, self._caller, self._key = session, caller, key
        self.stored, self._box = stored, box

    async def keep(self, status_code: int, body: bytes, media_type: str | None) -> None:
        """Store this request's response for its retries."""
        await self._session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.caller == self._caller, IdempotencyKey.key == self._key)
            .values(
                status_code=status_code,
                response_body=self._box.seal_bytes(body),  # it may hold a new secret
                media_type=media_type,
            )
        )
        await self._session.commit()


class IdempotencyStore:
    """Responses are kept sealed (``secret_box.py``): a created rep's or track's answer
    holds its webhook secret."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox | None = None):
        self._sessions = sessions
        self._box = box or SecretBox.local()

    @asynccontextmanager
    async def claim(
        self, caller: str, key: str, request_hash: str, now: datetime
    ) -> AsyncIterator[Claim]:
        """Hold (caller, key) for one request, or find the response already stored."""
        async with self._sessions() as session:
            try:
                stored = await self._take(session, caller, key, request_hash, now)
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                    raise KeyInUse(key) from None
                raise
            claim = Claim(session, caller, key, stored, self._box)
            yield claim
            # Leaving without keep() rolls back: the key is free again.

    async def _take(
        self, session: AsyncSession, caller: str, key: str, request_hash: str, now: datetime
    ) -> Stored | None:
        await session.execute(text(f"SET LOCAL lock_timeout = '{WAIT_SECONDS}s'"))
        await session.execute(PRUNE, {"now": now, "n": PRUNE_BATCH})
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.caller == caller,
                IdempotencyKey.key == key,
                IdempotencyKey.expires_at <= now,
            )
        )
        inserted = await session.scalar(
            insert(IdempotencyKey)
            .values(caller=caller, key=key, request_hash=request_hash, expires_at=now + KEY_TTL)
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        )
        if inserted is not None:
            return None
        row = await session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.caller == caller, IdempotencyKey.key == key)
        )
        if row is None or row.status_code is None or row.response_body is None:
            raise KeyInUse(key)  # it expired and went, or is mid-request: rare; retry
        body = self._box.open_bytes(row.response_body)
        stored = Stored(row.request_hash, row.status_code, body, row.media_type)
        await session.rollback()  # nothing of this request's to keep
        return stored
