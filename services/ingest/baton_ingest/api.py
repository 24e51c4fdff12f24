"""The HTTP front door: Segment's Tracking API and email webhooks → ``leads.events``.

Flow of one request: authenticate (writeKey by Basic auth or in the body; SendGrid by
signature) → read the body (media type, gzip, size limits) → validate and normalise
each event (``normalize``, ``email``: pure) → rate-limit the writeKey → publish and
wait for Kafka's acknowledgement (``pipeline.Ingestor``) → answer 2xx. Kafka
unavailable → 503 + Retry-After; nothing is acknowledged that Kafka did not store.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response

from baton_ingest.body import MAX_BATCH_BYTES
from baton_ingest.config import IngestSettings
from baton_ingest.errors import RequestError, body_too_large, too_many_failed_authentications
from baton_ingest.metrics import REJECTED
from baton_ingest.openapi import install as install_openapi
from baton_ingest.pipeline import Ingestor
from baton_ingest.publisher import Publisher
from baton_ingest.routes.email import email_routes
from baton_ingest.routes.segment import segment_routes
from baton_shared.auth_limits import FailedAuthLimit, failed_auths
from baton_shared.body_limit import BodyLimit
from baton_shared.http import ops_router
from baton_shared.kafka import kafka_answers
from baton_shared.kafka_connection import KafkaConnection


class ReadinessProbe:
    """Asks the cluster for metadata at most once per ``ttl_s``: readiness follows Kafka
    (an outage turns /healthz to 503) without a metadata request per probe."""

    def __init__(self, kafka: KafkaConnection | str, ttl_s: float = 2.0):
        self._bootstrap, self._ttl_s = kafka, ttl_s
        self._checked_at = float("-inf")
        self._answer = False

    async def kafka_answers(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= self._ttl_s:
            self._answer = await kafka_answers(self._bootstrap, timeout_s=1.5)
            self._checked_at = time.monotonic()
        return self._answer


def create_app(settings: IngestSettings, publisher: Publisher | None = None) -> FastAPI:
    publisher = publisher or Publisher(
        settings.kafka,
        settings.topics.events,
        settings.topic_partitions,
        settings.produce_timeout_seconds,
        settings.producer_tuning,
        settings.topic_durability,
        express_topic=settings.topics.express,
    )
    ingestor = Ingestor(settings, publisher)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        publisher.start()
        await ingestor.sealer.start()
        yield
        # uvicorn has drained in-flight requests by now; flush what they produced.
        await publisher.stop()
        await ingestor.sealer.stop()

    app = FastAPI(title="Baton ingest", version="0.1.0", lifespan=lifespan)
    # Inside CORS, so a browser reads the 413; the limit is Segment's request limit.
    app.add_middleware(BodyLimit, max_bytes=MAX_BATCH_BYTES, refuse=body_too_large)
    refuse = too_many_failed_authentications  # unknown writeKeys, from one address
    app.add_middleware(FailedAuthLimit, failures=failed_auths(settings), refuse=refuse)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=sorted(settings.cors_origins),
        allow_methods=["POST", "OPTIONS"],
        # analytics.js sends Authorization and, on a retry, X-Retry-Count.
        allow_headers=["Authorization", "Content-Type", "Content-Encoding", "X-Retry-Count"],
        max_age=86_400,
    )

    probe = ReadinessProbe(settings.kafka)

    async def readiness() -> dict[str, bool]:
        checks = {"kafka": publisher.connected and await probe.kafka_answers()}
        if ingestor.sealer.enabled:
            checks["privacy_keys"] = ingestor.sealer.ready
        return checks

    app.include_router(ops_router(readiness))
    app.include_router(segment_routes(ingestor))
    app.include_router(email_routes(ingestor))

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, exc: RequestError) -> Response:
        if exc.code != "invalid_request":  # per-event rejections are counted where decided
            REJECTED.labels(source="request", reason=exc.code).inc()
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        return RequestError(400, "invalid_request", f"{path}: {first['msg']}", path=path).response()

    install_openapi(app)
    return app
