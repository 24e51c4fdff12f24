"""What every ingest route does once it has canonical events: rate-limit, minimise
(:mod:`baton_ingest.minimise`), mark repeats, seal in privacy mode
(:mod:`baton_ingest.sealing`), serialise, publish, and count. A 2xx is
only ever answered after ``Publisher.publish`` returned. Track events named in
``BATON_INGEST_EXPRESS_EVENTS`` are published on the express lane too; a request
without one is refused with 503 and ``Retry-After`` while ingest is overloaded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from baton_ingest.config import IngestSettings
from baton_ingest.dedup import RecentIds
from baton_ingest.errors import RequestError
from baton_ingest.metrics import DUPLICATES, EVENTS, REJECTED
from baton_ingest.minimise import minimised
from baton_ingest.publisher import KafkaUnavailable, Overloaded, Publisher
from baton_ingest.ratelimit import RateLimited, WriteKeyLimiter
from baton_ingest.records import EventRecord, to_bytes
from baton_ingest.sealing import Sealer
from baton_shared.logs import get_logger

log = get_logger(__name__)


class Ingestor:
    def __init__(self, settings: IngestSettings, publisher: Publisher):
        self.settings = settings
        self.publisher = publisher
        self._limiter = WriteKeyLimiter(settings.rate_limit)
        self._recent = RecentIds(settings.dedup_window_size)
        self._minimisation = settings.minimisation
        self.sealer = Sealer(settings)
        self._express = settings.express_events

    async def rate_limit(self, write_key: str, events: int, source: str) -> None:
        try:
            await self._limiter.take(write_key, events)
        except RateLimited as exc:
            REJECTED.labels(source=source, reason="rate_limited").inc(events)
            raise RequestError(
                429,
                "rate_limited",
                f"writeKey over its limit ({self.settings.rate_limit} events); slow down",
                headers={"Retry-After": str(exc.retry_after_seconds)},
            ) from None

    async def store(self, records: Sequence[EventRecord]) -> None:
        """Publish and wait for Kafka's acknowledgement of every event, or raise a 503."""
        marked = self._mark_repeats([minimised(r, self._minimisation) for r in records])
        marked = await self.sealer.seal(marked)  # privacy mode: nothing personal in clear
        messages = [(r["lead_id"].encode(), to_bytes(r)) for r in marked]
        express = [m for m, r in zip(messages, marked, strict=True) if self._is_express(r)]
        try:
            await self.publisher.publish(messages, express)
        except Overloaded:
            wait = self.settings.overload_retry_after_seconds
            raise self._refused(marked, "overloaded", "ingest is over capacity", wait) from None
        except KafkaUnavailable as exc:
            log.warning("publish_failed", error=str(exc), events=len(records))
            why, wait = "events were not stored", self.settings.retry_after_seconds
            raise self._refused(marked, "kafka_unavailable", why, wait) from exc
        self._count(marked)

    def _is_express(self, record: EventRecord) -> bool:
        return record["type"] == "track" and record["name"] in self._express

    @staticmethod
    def _refused(
        records: Sequence[EventRecord], code: str, why: str, retry_after: int
    ) -> RequestError:
        """The 503 for a request none of whose events were stored, counted as rejected."""
        for source, n in Counter(r["source"] for r in records).items():
            REJECTED.labels(source=source, reason=code).inc(n)
        headers = {"Retry-After": str(retry_after)}
        return RequestError(503, code, f"{why}; retry later", headers=headers)

    def _mark_repeats(self, records: Sequence[EventRecord]) -> list[EventRecord]:
        marked = list(records)
        for i, seen in enumerate(self._recent.seen(r["event_id"] for r in records)):
            if seen:
                marked[i] = repeat = records[i].copy()
                repeat["possible_duplicate"] = True
        return marked

    def _count(self, stored: Sequence[EventRecord]) -> None:
        """Remember the ids and count by label set: one metric update per set, not per event."""
        accepted: Counter[tuple[str, str]] = Counter()
        duplicates: Counter[str] = Counter()
        self._recent.add_all(r["event_id"] for r in stored)
        for r in stored:
            source = r["source"]
            kind = r["name"] if source in ("sendgrid", "email") else r["type"]
            accepted[(source, str(kind))] += 1
            if r["possible_duplicate"]:
                duplicates[source] += 1
        for (source, kind), n in accepted.items():
            EVENTS.labels(source=source, type=kind).inc(n)
        for source, n in duplicates.items():
            DUPLICATES.labels(source=source).inc(n)
