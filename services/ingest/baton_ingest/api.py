"""The HTTP front door: the Segment HTTP Tracking API, answering 2xx only after Kafka acked.

Flow of one request: authenticate the writeKey (Basic auth or body) → read and
(un)gzip the body within size limits → parse JSON → validate and normalise each
message (``normalize``) → publish the valid ones and wait for Kafka's
acknowledgement (``Publisher``) → answer. Kafka unavailable → 503 + Retry-After.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Gauge, Histogram
from pydantic import ValidationError

from baton_ingest.config import IngestSettings
from baton_ingest.normalize import InvalidEvent, normalize
from baton_ingest.publisher import KafkaUnavailable, Publisher
from baton_ingest.segment import SegmentBatch, SegmentMessage
from baton_shared.clock import utcnow
from baton_shared.http import ops_router
from baton_shared.logs import get_logger
from baton_shared.schemas import LeadEvent

log = get_logger(__name__)

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024

EVENTS = Counter(
    "baton_ingest_events_total", "Events accepted into leads.events", ["source", "type"]
)
REJECTED = Counter("baton_ingest_rejected_total", "Events or requests refused", ["reason"])
REQUEST_SECONDS = Histogram(
    "baton_ingest_request_seconds", "Request latency, body read to answer", ["endpoint"]
)
IN_FLIGHT = Gauge("baton_ingest_in_flight_requests", "Requests being handled now")
BATCH_SIZE = Histogram(
    "baton_ingest_batch_size", "Messages per batch request", buckets=(1, 5, 10, 25, 50, 100, 250)
)


class RequestError(Exception):
    """A request-level failure, mapped to the error shape the Segment SDKs parse."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, **extra}, status_code=status)


def basic_auth_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise RequestError(
            401, "unauthorized", "Authorization header is not valid Basic auth"
        ) from None
    return decoded.partition(":")[0]


async def read_json(request: Request, limit: int) -> Any:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type not in ("application/json", "text/plain", ""):
        raise RequestError(
            415, "unsupported_media_type", f"Content-Type {content_type!r}: send application/json"
        )
    raw = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            raise RequestError(400, "invalid_gzip", "body is not valid gzip") from None
    if len(raw) > limit:
        raise RequestError(413, "payload_too_large", f"body is {len(raw)} bytes; limit {limit}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, "invalid_json", f"body is not valid JSON: {exc}") from None


def create_app(settings: IngestSettings, publisher: Publisher | None = None) -> FastAPI:
    publisher = publisher or Publisher(
        settings.kafka_bootstrap_servers,
        settings.topics.events,
        settings.topic_partitions,
        settings.produce_timeout_seconds,
    )
    max_future = timedelta(seconds=settings.max_future_skew_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        publisher.start()
        yield
        await publisher.stop()

    app = FastAPI(title="Baton ingest", version="0.1.0", lifespan=lifespan)

    async def readiness() -> dict[str, bool]:
        return {"kafka": publisher.connected}

    app.include_router(ops_router(readiness))

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
        REJECTED.labels(reason=exc.code).inc()
        response = error_response(exc.status, exc.code, exc.message)
        response.headers.update(exc.headers or {})
        return response

    def authenticate_header(request: Request) -> str | None:
        """Refuse a wrong Basic-auth writeKey before reading the body."""
        key = basic_auth_key(request)
        if key is not None and key not in settings.write_keys:
            raise RequestError(401, "unauthorized", "unknown writeKey")
        return key

    def authenticate(header_key: str | None, body_key: object) -> None:
        key = header_key or (body_key if isinstance(body_key, str) else None)
        if not key:
            raise RequestError(
                401, "unauthorized", "missing writeKey: send it as the Basic auth username"
            )
        if key not in settings.write_keys:
            raise RequestError(401, "unauthorized", "unknown writeKey")

    def to_event(raw: Any, index: str, batch_context: dict[str, Any], sent_at: Any) -> LeadEvent:
        if not isinstance(raw, dict):
            raise InvalidEvent(index, "must be a JSON object")
        if len(orjson.dumps(raw)) > MAX_EVENT_BYTES:
            raise InvalidEvent(index, f"event larger than {MAX_EVENT_BYTES} bytes")
        merged = dict(raw)
        if batch_context and "context" not in merged:
            merged["context"] = batch_context
        if sent_at is not None and "sentAt" not in merged:
            merged["sentAt"] = sent_at
        try:
            msg = SegmentMessage.model_validate(merged)
        except ValidationError as exc:
            first = exc.errors()[0]
            path = ".".join(str(p) for p in first["loc"])
            raise InvalidEvent(f"{index}.{path}" if index else path, first["msg"]) from None
        library = str((msg.context.get("library") or {}).get("name", ""))
        source = "rudderstack" if "rudder" in library.lower() else "segment"
        return normalize(msg, received_at=utcnow(), source=source, max_future=max_future)

    async def publish(events: list[LeadEvent]) -> None:
        try:
            await publisher.publish(events)
        except KafkaUnavailable as exc:
            log.warning("publish_failed", error=str(exc), events=len(events))
            raise RequestError(
                503,
                "kafka_unavailable",
                "events were not stored; retry later",
                headers={"Retry-After": str(settings.retry_after_seconds)},
            ) from exc
        for e in events:
            EVENTS.labels(source=e.source, type=e.type.value).inc()

    async def single(request: Request, forced_type: str) -> JSONResponse:
        started = time.perf_counter()
        IN_FLIGHT.inc()
        try:
            header_key = authenticate_header(request)
            body = await read_json(request, MAX_EVENT_BYTES)
            if not isinstance(body, dict):
                raise RequestError(400, "invalid_request", "body must be a JSON object")
            authenticate(header_key, body.get("writeKey"))
            body = {**body, "type": forced_type}
            try:
                event = to_event(body, "", {}, None)
            except InvalidEvent as exc:
                REJECTED.labels(reason="invalid_event").inc()
                return error_response(400, "invalid_request", str(exc), path=exc.path)
            await publish([event])
            return JSONResponse({"success": True})
        finally:
            IN_FLIGHT.dec()
            REQUEST_SECONDS.labels(endpoint=forced_type).observe(time.perf_counter() - started)

    for kind in ("track", "identify", "page", "screen", "group", "alias"):

        async def endpoint(request: Request, _kind: str = kind) -> JSONResponse:
            return await single(request, _kind)

        app.add_api_route(f"/v1/{kind}", endpoint, methods=["POST"], summary=f"Segment {kind} call")

    @app.post("/v1/batch", summary="Segment batch: several calls in one request")
    async def batch(request: Request) -> JSONResponse:
        started = time.perf_counter()
        IN_FLIGHT.inc()
        try:
            header_key = authenticate_header(request)
            body = await read_json(request, MAX_BATCH_BYTES)
            if not isinstance(body, dict):
                raise RequestError(400, "invalid_request", "body must be a JSON object")
            authenticate(header_key, body.get("writeKey"))
            try:
                envelope = SegmentBatch.model_validate(body)
            except ValidationError as exc:
                first = exc.errors()[0]
                path = ".".join(str(p) for p in first["loc"])
                raise RequestError(400, "invalid_request", f"{path}: {first['msg']}") from None
            BATCH_SIZE.observe(len(envelope.batch))
            events: list[LeadEvent] = []
            rejected: list[dict[str, Any]] = []
            for i, raw in enumerate(envelope.batch):
                try:
                    events.append(to_event(raw, f"batch.{i}", envelope.context, body.get("sentAt")))
                except InvalidEvent as exc:
                    REJECTED.labels(reason="invalid_event").inc()
                    rejected.append({"index": i, "path": exc.path, "message": exc.rule})
            if not events:
                return error_response(
                    400, "invalid_request", "no valid event in batch", rejected=rejected
                )
            await publish(events)
            return JSONResponse({"success": True, "accepted": len(events), "rejected": rejected})
        finally:
            IN_FLIGHT.dec()
            REQUEST_SECONDS.labels(endpoint="batch").observe(time.perf_counter() - started)

    return app
