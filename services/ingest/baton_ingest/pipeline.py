"""What every ingest route does once it has canonical events: rate-limit, mark repeats,
publish, and count. A 2xx is only ever answered after ``Publisher.publish`` returned."""

from __future__ import annotations

from collections.abc import Sequence

from baton_ingest.config import IngestSettings
from baton_ingest.dedup import RecentIds
from baton_ingest.errors import RequestError
from baton_ingest.metrics import DUPLICATES, EVENTS, REJECTED
from baton_ingest.publisher import KafkaUnavailable, Publisher
from baton_ingest.ratelimit import RateLimited, WriteKeyLimiter
from baton_shared.logs import get_logger
from baton_shared.schemas import LeadEvent

log = get_logger(__name__)


class Ingestor:
    def __init__(self, settings: IngestSettings, publisher: Publisher):
        self.settings = settings
        self.publisher = publisher
        self._limiter = WriteKeyLimiter(settings.rate_limit)
        self._recent = RecentIds(settings.dedup_window_size)

    def rate_limit(self, write_key: str, events: int, source: str) -> None:
        try:
            self._limiter.take(write_key, events)
        except RateLimited as exc:
            REJECTED.labels(source=source, reason="rate_limited").inc(events)
            raise RequestError(
                429,
                "rate_limited",
                f"writeKey over its limit ({self.settings.rate_limit} events); slow down",
                headers={"Retry-After": str(exc.retry_after_seconds)},
            ) from None

    async def store(self, events: Sequence[LeadEvent]) -> None:
        """Publish and wait for Kafka's acknowledgement of every event, or raise a 503."""
        marked = [self._mark(e) for e in events]
        try:
            await self.publisher.publish(marked)
        except KafkaUnavailable as exc:
            log.warning("publish_failed", error=str(exc), events=len(events))
            for e in marked:
                REJECTED.labels(source=e.source, reason="kafka_unavailable").inc()
            raise RequestError(
                503,
                "kafka_unavailable",
                "events were not stored; retry later",
                headers={"Retry-After": str(self.settings.retry_after_seconds)},
            ) from exc
        for e in marked:
            self._recent.add(e.event_id)
            EVENTS.labels(
                source=e.source, type=e.name if e.source in ("sendgrid", "email") else e.type.value
            ).inc()
            if e.possible_duplicate:
                DUPLICATES.labels(source=e.source).inc()

    def _mark(self, event: LeadEvent) -> LeadEvent:
        if event.event_id in self._recent:
            return event.model_copy(update={"possible_duplicate": True})
        return event
