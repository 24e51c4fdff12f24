"""Email engagement: ``POST /v1/email/events`` (Baton's schema) and
``POST /v1/email/sendgrid`` (SendGrid's Event Webhook, signature-verified when
``BATON_INGEST_SENDGRID_VERIFICATION_KEY`` is set; otherwise a writeKey is required).
Both decide per event, like ``/v1/batch``."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from baton_ingest.body import (
    MAX_BATCH_BYTES,
    basic_auth_key,
    check_write_key,
    parse_json,
    read_raw,
)
from baton_ingest.email import EmailEvent, from_generic, from_sendgrid
from baton_ingest.errors import Accepted, RequestError, json_response
from baton_ingest.metrics import BATCH_SIZE, REJECTED
from baton_ingest.normalize import InvalidEvent, refuse_nul
from baton_ingest.openapi import documented, email_events_schema, request_body, sendgrid_schema
from baton_ingest.pipeline import Ingestor
from baton_ingest.records import record_of
from baton_ingest.routes.segment import timed
from baton_ingest.sendgrid_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureVerifier
from baton_shared.clock import utcnow
from baton_shared.schemas import LeadEvent

SENDGRID_BODY = (
    "SendGrid's Event Webhook array. Signed by SendGrid (ECDSA) when "
    "BATON_INGEST_SENDGRID_VERIFICATION_KEY is set; otherwise Basic auth with a writeKey."
)
ERRORS = documented(400, 401, 413, 415, 429, 503)


def email_routes(ingestor: Ingestor) -> APIRouter:
    settings = ingestor.settings
    max_future = timedelta(seconds=settings.max_future_skew_seconds)
    verifier = (
        SignatureVerifier(settings.sendgrid_verification_key, settings.sendgrid_max_age_seconds)
        if settings.sendgrid_verification_key
        else None
    )
    router = APIRouter(prefix="/v1/email", tags=["email"])

    async def decide(
        items: list[Any], convert: Callable[[Any], LeadEvent], source: str, key: str
    ) -> Response:
        events: list[LeadEvent] = []
        rejected: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            try:
                refuse_nul(item)
                events.append(convert(item))
            except InvalidEvent as exc:
                REJECTED.labels(source=source, reason="invalid_event").inc()
                path = f"{i}.{exc.path}" if exc.path else str(i)
                rejected.append({"index": i, "path": path, "message": exc.rule})
        BATCH_SIZE.labels(endpoint=source).observe(len(items))
        if not events:
            raise RequestError(400, "invalid_request", "no valid event", rejected=rejected)
        await ingestor.rate_limit(key, len(events), source)
        await ingestor.store([record_of(e) for e in events])
        return json_response({"success": True, "accepted": len(events), "rejected": rejected})

    @router.post(
        "/events",
        summary="Email engagement events in Baton's generic schema",
        response_model=Accepted,
        responses=ERRORS,
        openapi_extra=request_body(email_events_schema()),
    )
    async def generic(request: Request) -> Response:
        return await timed("email", _generic(request))

    async def _generic(request: Request) -> Response:
        key = check_write_key(basic_auth_key(request), settings.write_keys)
        body = parse_json(await read_raw(request, MAX_BATCH_BYTES))
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            raise RequestError(
                400, "invalid_request", "events: required, a list of events", path="events"
            )
        if not body["events"] or len(body["events"]) > 1000:
            raise RequestError(400, "invalid_request", "events: 1 to 1000 events", path="events")

        def convert(raw: Any) -> LeadEvent:
            try:
                event = EmailEvent.model_validate(raw)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise InvalidEvent(".".join(str(p) for p in first["loc"]), first["msg"]) from None
            return from_generic(event, received_at=utcnow(), max_future=max_future)

        return await decide(body["events"], convert, "email", key)

    @router.post(
        "/sendgrid",
        summary="SendGrid Event Webhook",
        response_model=Accepted,
        responses=ERRORS,
        openapi_extra=request_body(sendgrid_schema(), SENDGRID_BODY),
    )
    async def sendgrid(request: Request) -> Response:
        return await timed("sendgrid", _sendgrid(request))

    async def _sendgrid(request: Request) -> Response:
        raw = await read_raw(request, MAX_BATCH_BYTES)
        if verifier is not None:
            headers = request.headers
            signature, timestamp = headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
            if not verifier.verify(signature, timestamp, raw, time.time()):
                raise RequestError(
                    401,
                    "invalid_signature",
                    f"{SIGNATURE_HEADER} does not verify with the configured key, or "
                    f"{TIMESTAMP_HEADER} is over {settings.sendgrid_max_age_seconds:g} s old",
                )
            key = "sendgrid"
        else:
            key = check_write_key(basic_auth_key(request), settings.write_keys)
        body = parse_json(raw)
        if not isinstance(body, list) or not body:
            raise RequestError(
                400, "invalid_request", "body must be SendGrid's non-empty JSON array of events"
            )
        return await decide(
            body,
            lambda item: from_sendgrid(item, received_at=utcnow(), max_future=max_future),
            "sendgrid",
            key,
        )

    return router


__all__ = ["email_routes"]
