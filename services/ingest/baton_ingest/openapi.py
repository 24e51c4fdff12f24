"""What ingest's OpenAPI document declares: per call, the message the server accepts (the
rules ``normalize`` applies that JSON Schema can state: userId or anonymousId, a track's
``event``, a group's ``groupId``, an alias's ``previousId``), the media types, the
writeKey as Basic auth, and every error status with the Segment-compatible error body."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from baton_ingest.email import SENDGRID_TYPES, EmailEvents
from baton_ingest.errors import ErrorBody
from baton_ingest.segment import SegmentBatch, SegmentMessage

SECURITY = [{"writeKey": []}]
BODY_NOTE = (
    "JSON as application/json, or as text/plain (what navigator.sendBeacon sends); "
    "optionally gzip-compressed with `Content-Encoding: gzip`."
)
# Present and not empty: a number is read as its decimal string.
_ID = {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 256}, {"type": "number"}]}
_EMPTY = {"type": "string", "maxLength": 0}
# ISO 8601 with an offset, or Unix seconds (milliseconds past 2e10).
_INSTANT = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}, {"type": "null"}]
}
_CALLS = ("track", "identify", "page", "screen", "group", "alias")
_REQUIRED_BY_CALL = {
    "track": {"event": {"type": "string", "minLength": 1, "maxLength": 512}},
    "group": {"groupId": _ID},
    "alias": {"previousId": _ID},
}
_ERRORS = {
    400: "Invalid JSON, gzip or event; `path` names the field (`rejected`: each event)",
    401: "Missing or unknown writeKey, or a SendGrid signature that does not verify",
    413: "Event over 32 KB or request over 500 KB (also after gunzip)",
    415: "Content-Type other than application/json or text/plain, or an unknown "
    "Content-Encoding (gzip or none)",
    429: "Rate limit for this writeKey, or too many failed authentications from this "
    "address; retry after Retry-After seconds",
    503: "Kafka did not acknowledge (or, in privacy mode, the data keys were unavailable); "
    "nothing was stored; retry after Retry-After seconds",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def message_schema(call: str | None) -> dict[str, Any]:
    """One Segment message: for ``call`` (its path names the call, ``type`` is ignored), or
    inside a batch (``call`` None: ``type`` required)."""
    schema = SegmentMessage.model_json_schema(by_alias=True)
    properties = schema["properties"]
    for name in ("userId", "anonymousId", "previousId", "groupId"):
        properties[name] = {"anyOf": [*_ID["anyOf"], _EMPTY, {"type": "null"}]}
    for name in ("timestamp", "originalTimestamp", "sentAt"):
        properties[name] = copy.deepcopy(_INSTANT)
    identified = [{"required": [k], "properties": {k: _ID}} for k in ("userId", "anonymousId")]
    rules: list[dict[str, Any]] = [{"anyOf": identified}]
    if call is None:
        properties["type"] = {"enum": list(_CALLS)}
        schema["required"] = ["type"]
        rules += [
            {"if": {"properties": {"type": {"const": kind}}}, "then": _required(kind)}
            for kind in _REQUIRED_BY_CALL
        ]
    else:
        del properties["type"]
        if call in _REQUIRED_BY_CALL:
            rules.append(_required(call))
    schema["allOf"] = rules
    schema.pop("title", None)
    return schema


def _required(call: str) -> dict[str, Any]:
    fields = _REQUIRED_BY_CALL[call]
    return {"required": list(fields), "properties": fields}


def batch_schema() -> dict[str, Any]:
    schema = SegmentBatch.model_json_schema(by_alias=True)
    schema["properties"]["batch"]["items"] = message_schema(None)
    schema["properties"]["sentAt"] = copy.deepcopy(_INSTANT)
    return schema


def email_events_schema() -> dict[str, Any]:
    """``POST /v1/email/events``: events decided one by one; other top-level keys ignored."""
    schema = EmailEvents.model_json_schema()
    event = schema.pop("$defs")["EmailEvent"]
    event["properties"]["timestamp"] = {"anyOf": copy.deepcopy(_INSTANT["anyOf"][:2])}
    schema["properties"]["events"]["items"] = event
    schema.pop("additionalProperties", None)
    return schema


def sendgrid_schema() -> dict[str, Any]:
    """SendGrid's Event Webhook array, with what ingest reads of each event."""
    event = {
        "type": "object",
        "required": ["event", "sg_event_id", "timestamp", "email"],
        "properties": {
            "event": {"enum": sorted(SENDGRID_TYPES)},
            "sg_event_id": {"type": "string", "minLength": 1, "maxLength": 256},
            "timestamp": {"type": "number", "description": "Unix seconds"},
            "email": {"type": "string", "format": "email"},
            "url": {"description": "The clicked link (a string; anything else is ignored)"},
            "sg_message_id": {"description": "A string; anything else is ignored"},
        },
        "additionalProperties": True,
    }
    return {"type": "array", "minItems": 1, "items": event}


def request_body(schema: dict[str, Any], description: str = BODY_NOTE) -> dict[str, Any]:
    """``openapi_extra`` for a route reading ``schema`` as JSON or text/plain JSON."""
    content = {"schema": schema}
    return {
        "security": SECURITY,
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": content, "text/plain": content},
        },
    }


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    return {
        s: {
            "model": ErrorBody,
            "description": _ERRORS[s],
            **({"headers": _RETRY_AFTER} if s in (429, 503) else {}),
        }
        for s in statuses
    }


def install(app: FastAPI) -> None:
    """Declare the writeKey as HTTP Basic auth (FastAPI does not derive it)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        schema = original()
        schema.setdefault("components", {})["securitySchemes"] = {
            "writeKey": {
                "type": "http",
                "scheme": "basic",
                "description": "The writeKey as the username, no password. Segment calls "
                "may carry it as `writeKey` in the body instead.",
            }
        }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
