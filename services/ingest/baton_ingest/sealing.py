"""Privacy mode at the door: every event is pseudonymised and sealed
(:func:`baton_shared.privacy.seal_event`) before it is published, so ``leads.events``
never holds personal data in clear.

One :class:`~baton_shared.privacy.KeyStore` round trip per request fetches (or creates)
the data keys its cache lacks. The store is opened at start-up; while PostgreSQL cannot
be reached, requests are refused with 503 and ``Retry-After`` (never published in
clear) and the store is opened again in the background. With privacy mode off
:meth:`Sealer.seal` returns the records as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence

from baton_ingest.config import IngestSettings
from baton_ingest.errors import RequestError
from baton_ingest.metrics import REJECTED
from baton_ingest.records import EventRecord
from baton_shared.logs import get_logger
from baton_shared.privacy import KeyStore, KeyStoreUnavailable, event_subject, seal_event

log = get_logger(__name__)

REOPEN_FIRST_SECONDS = 0.5
REOPEN_MAX_SECONDS = 10.0


class Sealer:
    def __init__(self, settings: IngestSettings) -> None:
        keys = settings.privacy_keys
        self.enabled = keys is not None
        self._id_key: bytes = keys.id_key if keys is not None else b""
        self._settings = settings
        self._retry_after = str(settings.retry_after_seconds)
        self._store: KeyStore | None = None
        self._opening: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Privacy mode off, or its key store open."""
        return not self.enabled or self._store is not None

    async def start(self) -> None:
        """Open the key store (privacy mode only); keep trying in the background when
        PostgreSQL does not answer yet."""
        if not self.enabled:
            return
        try:
            self._store = await KeyStore.open(self._settings)
        except KeyStoreUnavailable as exc:
            log.warning("privacy_key_store_unavailable", error=str(exc))
            self._opening = asyncio.create_task(self._reopen(), name="privacy-key-store")

    async def stop(self) -> None:
        if self._opening is not None:
            self._opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._opening
        if self._store is not None:
            await self._store.close()
            self._store = None

    async def seal(self, records: Sequence[EventRecord]) -> Sequence[EventRecord]:
        """The records as they may be published: sealed in privacy mode, else as given.
        Raises a 503 RequestError when the data keys cannot be had."""
        if not self.enabled:
            return records
        if self._store is None:
            raise self._unavailable(records, "privacy key store not open")
        id_key = self._id_key
        try:
            keys = await self._store.keys([event_subject(r, id_key) for r in records])
        except KeyStoreUnavailable as exc:
            raise self._unavailable(records, str(exc)) from None
        return [seal_event(r, id_key, keys.__getitem__) for r in records]  # type: ignore[misc]

    def _unavailable(self, records: Sequence[EventRecord], why: str) -> RequestError:
        log.warning("privacy_keys_unavailable", error=why, events=len(records))
        for source, n in Counter(r["source"] for r in records).items():
            REJECTED.labels(source=source, reason="privacy_keys_unavailable").inc(n)
        return RequestError(
            503,
            "privacy_keys_unavailable",
            "events were not stored (their encryption keys are unavailable); retry later",
            headers={"Retry-After": self._retry_after},
        )

    async def _reopen(self) -> None:
        wait = REOPEN_FIRST_SECONDS
        while self._store is None:
            await asyncio.sleep(wait)
            wait = min(2 * wait, REOPEN_MAX_SECONDS)
            with contextlib.suppress(KeyStoreUnavailable):
                self._store = await KeyStore.open(self._settings)
        log.info("privacy_key_store_open")
