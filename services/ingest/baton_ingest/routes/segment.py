"""The Segment HTTP Tracking API: ``/v1/{track,identify,page,screen,group,alias,batch}``,
and the one-letter paths analytics.js posts to (``/v1/t``, ``/v1/i``, ... ``/v1/b``),
which are the same endpoints under another name (and ``/v1/m``, its own telemetry,
discarded).

Batches are decided per event, like Segment: valid events are stored, invalid ones
are listed in the answer with the field and the rule; a batch with no valid event
is a 400. A message without ``messageId`` gets one generated here, as Segment does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from baton_ingest.body import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    basic_auth_key,
    check_write_key,
    read_object,
)
from baton_ingest.errors import Accepted, RequestError, json_response
from baton_ingest.metrics import BATCH_SIZE, IN_FLIGHT, REJECTED, REQUEST_SECONDS
from baton_ingest.normalize import (
    InvalidEvent,
    SharedFields,
    normalize,
    refuse_nul,
    source_of,
)
from baton_ingest.openapi import batch_schema, documented, message_schema, request_body
from baton_ingest.pipeline import Ingestor
from baton_ingest.records import EventRecord
from baton_ingest.segment import parse_batch, parse_message
from baton_shared.clock import utcnow

CALLS = ("track", "identify", "page", "screen", "group", "alias")
# analytics.js (analytics-next) posts to ``<apiHost>/<first letter of the call>`` and
# batches to ``<apiHost>/b``.
SHORT_PATHS = {call[0]: call for call in CALLS} | {"b": "batch"}
ERRORS = documented(400, 401, 413, 415, 429, 503)
NOTHING_SHARED = SharedFields({})


def _validation_path(exc: ValidationError, prefix: str) -> tuple[str, str]:
    first = exc.errors()[0]
    path = ".".join(str(p) for p in first["loc"])
    return (f"{prefix}.{path}" if prefix else path), first["msg"]


def segment_routes(ingestor: Ingestor) -> APIRouter:
    settings = ingestor.settings
    router = APIRouter(prefix="/v1", tags=["segment"])
    max_future = timedelta(seconds=settings.max_future_skew_seconds)

    def to_event(
        raw: Any, prefix: str, shared: SharedFields, received_at: datetime
    ) -> EventRecord:
        if not isinstance(raw, dict):
            raise InvalidEvent(prefix or "body", "must be a JSON object")
        encoded = orjson.dumps(raw)
        try:
            merged = shared.merged(raw, len(encoded), MAX_EVENT_BYTES)
            refuse_nul(raw, encoded)
        except InvalidEvent as exc:
            path = ".".join(part for part in (prefix, exc.path) if part) or "body"
            raise InvalidEvent(path, exc.rule) from None
        try:
            msg = parse_message(merged)
        except ValidationError as exc:
            raise InvalidEvent(*_validation_path(exc, prefix)) from None
        if msg.message_id is None:
            msg = msg._replace(message_id=generated_message_id())
        try:
            return normalize(
                msg,
                received_at=received_at,
                source=source_of(raw),
                max_future=max_future,
                page_rules=settings.page_rules,
            )
        except InvalidEvent as exc:
            raise InvalidEvent(f"{prefix}.{exc.path}" if prefix else exc.path, exc.rule) from None

    async def authenticated_body(request: Request, limit: int) -> tuple[str, dict[str, Any]]:
        header_key = basic_auth_key(request)
        if header_key is not None:
            check_write_key(header_key, settings.write_keys)
        body = await read_object(request, limit)
        key = header_key or body.get("writeKey")
        return check_write_key(key if isinstance(key, str) else None, settings.write_keys), body

    async def single(request: Request, call: str) -> Response:
        write_key, body = await authenticated_body(request, MAX_EVENT_BYTES)
        try:
            event = to_event({**body, "type": call}, "", NOTHING_SHARED, utcnow())
        except InvalidEvent as exc:
            REJECTED.labels(source=source_of(body), reason="invalid_event").inc()
            raise RequestError(400, "invalid_request", str(exc), path=exc.path) from None
        await ingestor.rate_limit(write_key, 1, event["source"])
        await ingestor.store([event])
        BATCH_SIZE.labels(endpoint=call).observe(1)
        return json_response({"success": True})

    def call_endpoint(call: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await timed(call, single(request, call))

        return endpoint

    for call in CALLS:
        router.add_api_route(
            f"/{call}",
            call_endpoint(call),
            methods=["POST"],
            response_model=Accepted,
            summary=f"Segment {call} call",
            responses=ERRORS,
            openapi_extra=request_body(message_schema(call)),
        )

    @router.post(
        "/batch",
        summary="Segment batch: several calls in one request",
        response_model=Accepted,
        responses=ERRORS,
        openapi_extra=request_body(batch_schema()),
    )
    async def batch(request: Request) -> Response:
        return await timed("batch", _batch(request))

    long_paths = {route.path: route for route in router.routes if isinstance(route, APIRoute)}
    for short, call in SHORT_PATHS.items():
        # Not in the OpenAPI document: the same operation as its long path.
        router.add_api_route(
            f"/{short}",
            long_paths[f"/v1/{call}"].endpoint,
            methods=["POST"],
            include_in_schema=False,
        )

    @router.post("/m", include_in_schema=False)
    async def library_metrics() -> Response:
        """analytics.js's own delivery counters, meant for Segment: accepted, discarded."""
        return json_response({"success": True})

    async def _batch(request: Request) -> Response:
        write_key, body = await authenticated_body(request, MAX_BATCH_BYTES)
        try:
            envelope = parse_batch(body)
        except ValidationError as exc:
            path, rule = _validation_path(exc, "")
            raise RequestError(400, "invalid_request", f"{path}: {rule}", path=path) from None
        defaults: dict[str, Any] = {}
        if envelope.context:
            defaults["context"] = envelope.context
        if "sentAt" in body:
            defaults["sentAt"] = body["sentAt"]
        shared = SharedFields(defaults)
        events: list[EventRecord] = []
        rejected: list[dict[str, Any]] = []
        received_at = utcnow()  # one receive time per request, as Segment's receivedAt
        for i, raw in enumerate(envelope.batch):
            try:
                events.append(to_event(raw, f"batch.{i}", shared, received_at))
            except InvalidEvent as exc:
                REJECTED.labels(
                    source=source_of(raw) if isinstance(raw, dict) else "segment",
                    reason="invalid_event",
                ).inc()
                rejected.append({"index": i, "path": exc.path, "message": exc.rule})
        BATCH_SIZE.labels(endpoint="batch").observe(len(envelope.batch))
        if not events:
            raise RequestError(400, "invalid_request", "no valid event in batch", rejected=rejected)
        await ingestor.rate_limit(write_key, len(events), events[0]["source"])
        await ingestor.store(events)
        return json_response({"success": True, "accepted": len(events), "rejected": rejected})

    return router


def generated_message_id() -> str:
    """The id of a message sent without one. Unique per request, so a retry of such a
    message is a second event: only the sender's own messageId lets a repeat be marked."""
    return f"ingest-{uuid.uuid4()}"


async def timed(endpoint: str, work: Any) -> Response:
    """In-flight gauge and latency histogram around one request."""
    started = time.perf_counter()
    IN_FLIGHT.inc()
    try:
        return await work
    finally:
        IN_FLIGHT.dec()
        REQUEST_SECONDS.labels(endpoint=endpoint).observe(time.perf_counter() - started)
