"""The per-lead data keys, in PostgreSQL (``privacy.data_keys``), and the erasure record.

A data key is random, kept wrapped (AES-GCM under ``wrap_key``, the subject as
associated data) and fetched for a whole batch at once: :meth:`KeyStore.keys` makes
one round trip for the subjects its cache lacks, creating the missing keys when asked.
:meth:`KeyStore.destroy` deletes keys, which makes every record sealed with them
unreadable (crypto-shredding); other processes stop using a key they cached within
``BATON_PRIVACY_KEY_CACHE_SECONDS``. The schema is created on open, under an advisory
lock, so any service may be the first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from baton_shared.privacy import erasures
from baton_shared.privacy.cache import KeyCache
from baton_shared.privacy.erasures import Erasure, erasure_of, erasure_uuid
from baton_shared.privacy.sealing import decrypt, encrypt, new_data_key

# What a PostgreSQL that is down, restarting or out of connections raises.
UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
)
SCHEMA_LOCK = 0x6261746F6E707276  # "batonprv": one creator of the schema at a time
DEFAULT_MAX_KEYS = 100_000
COMMAND_TIMEOUT_SECONDS = 10  # a database that stopped answering fails the batch, not hangs it

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS privacy;
CREATE TABLE IF NOT EXISTS privacy.data_keys (
    subject text PRIMARY KEY,
    wrapped bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS privacy.erasures (
    erasure_id uuid PRIMARY KEY,
    subjects text[] NOT NULL,
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL,
    steps jsonb NOT NULL DEFAULT '{}',
    completed_at timestamptz
);
"""

# Inserted rows come back from the CTE; existing ones from the table (the statement's
# snapshot: a key another process committed meanwhile is read by a second query).
CREATE_KEYS = """
WITH inserted AS (
    INSERT INTO privacy.data_keys (subject, wrapped)
    SELECT * FROM unnest($1::text[], $2::bytea[])
    ON CONFLICT (subject) DO NOTHING
    RETURNING subject, wrapped
)
SELECT subject, wrapped FROM inserted
UNION ALL
SELECT subject, wrapped FROM privacy.data_keys WHERE subject = ANY($1::text[])
"""
SELECT_KEYS = "SELECT subject, wrapped FROM privacy.data_keys WHERE subject = ANY($1::text[])"
DELETE_KEYS = "DELETE FROM privacy.data_keys WHERE subject = ANY($1::text[])"


class KeyStoreSettings(Protocol):
    database_url: str
    privacy_key_cache_seconds: float

    @property
    def privacy_keys(self) -> Any: ...


class KeyStoreUnavailable(RuntimeError):
    """PostgreSQL did not answer: no key could be fetched, created or destroyed."""


def asyncpg_dsn(url: str) -> str:
    """A ``postgresql://`` DSN, also from SQLAlchemy's ``postgresql+asyncpg://`` form."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class KeyStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        wrap_key: bytes,
        *,
        cache_seconds: float,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._wrap_key = wrap_key
        self._cache = KeyCache(cache_seconds, max_keys)
        self._clock = clock

    @classmethod
    async def open(
        cls,
        settings: KeyStoreSettings,
        *,
        database_url: str | None = None,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> KeyStore:
        """Connect, create the schema if missing, and return the store (privacy mode
        must be on). Raises KeyStoreUnavailable when PostgreSQL cannot be reached."""
        keys = settings.privacy_keys
        if keys is None:
            raise ValueError("KeyStore needs BATON_PRIVACY_KEY (privacy mode is off)")
        dsn = asyncpg_dsn(database_url or settings.database_url)
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=1, max_size=4, timeout=5, command_timeout=COMMAND_TIMEOUT_SECONDS
            )
        except UNAVAILABLE as exc:
            raise KeyStoreUnavailable(f"privacy key store: {type(exc).__name__}") from None
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
                await conn.execute(SCHEMA)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, keys.wrap_key, cache_seconds=settings.privacy_key_cache_seconds,
                   max_keys=max_keys)  # fmt: skip

    async def close(self) -> None:
        await self._pool.close()

    async def keys(self, subjects: Iterable[str], *, create: bool = True) -> dict[str, bytes]:
        """The data key of each subject: one round trip for those not cached. With
        ``create`` a missing key is made; without, erased and unknown subjects are
        absent from the answer."""
        now = self._clock()
        found: dict[str, bytes] = {}
        missing: list[str] = []
        for subject in dict.fromkeys(subjects):
            key = self._cache.get(subject, now)
            if key is None:
                missing.append(subject)
            else:
                found[subject] = key
        if not missing:
            return found
        rows = await self._fetch(missing, create)
        if create and len({r["subject"] for r in rows}) < len(missing):
            rows += await self._run("fetch", SELECT_KEYS, missing)  # lost a race to create
        for row in rows:
            subject = row["subject"]
            key = decrypt(self._wrap_key, row["wrapped"], subject.encode())
            if key is None:
                raise ValueError("a data key does not open with BATON_PRIVACY_KEY")
            found[subject] = key
            self._cache.put(subject, key, now)
        return found

    async def destroy(self, subjects: Iterable[str]) -> int:
        """Delete the subjects' keys (and forget them here); how many existed."""
        subjects = list(dict.fromkeys(subjects))
        self._cache.drop(subjects)
        status = await self._run("execute", DELETE_KEYS, subjects)
        return int(status.split()[-1])

    async def record_erasure(
        self,
        subjects: list[str],
        requested_by: str,
        *,
        erasure_id: str | None = None,
        requested_at: datetime | None = None,
    ) -> Erasure:
        """Record an erasure of ``subjects`` (pseudonyms only); a repeated
        ``erasure_id`` returns the first record."""
        row = await self._run("fetchrow", erasures.INSERT, erasure_uuid(erasure_id),
                              subjects, requested_by, requested_at)  # fmt: skip
        return erasure_of(row)

    async def finish_step(
        self, erasure_id: str, service: str, *, steps: tuple[str, ...] = erasures.ERASURE_STEPS
    ) -> Erasure | None:
        """Mark ``service``'s step of the erasure done (the first time counts); the
        erasure completes when every one of ``steps`` is. None for an unknown id."""
        row = await self._run("fetchrow", erasures.FINISH_STEP, erasure_uuid(erasure_id),
                              service, list(steps))  # fmt: skip
        return None if row is None else erasure_of(row)

    async def erasure(self, erasure_id: str) -> Erasure | None:
        try:
            uid = erasure_uuid(erasure_id)
        except ValueError:
            return None
        row = await self._run("fetchrow", erasures.SELECT, uid)
        return None if row is None else erasure_of(row)

    async def _fetch(self, subjects: list[str], create: bool) -> list[Any]:
        if not create:
            return await self._run("fetch", SELECT_KEYS, subjects)
        wrapped = [encrypt(self._wrap_key, new_data_key(), s.encode()) for s in subjects]
        return await self._run("fetch", CREATE_KEYS, subjects, wrapped)

    async def _run(self, method: str, query: str, *args: Any) -> Any:
        try:
            async with self._pool.acquire() as conn:
                return await getattr(conn, method)(query, *args)
        except UNAVAILABLE as exc:
            raise KeyStoreUnavailable(f"privacy key store: {type(exc).__name__}") from None
