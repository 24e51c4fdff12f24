"""Reading a request: writeKey, media type, gzip, size limits and JSON."""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

import orjson
from fastapi import Request

from baton_ingest.errors import RequestError

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
JSON_MEDIA_TYPES = ("application/json", "text/plain", "")


def basic_auth_key(request: Request) -> str | None:
    """The writeKey in ``Authorization: Basic base64(writeKey:)``, if that header is sent."""
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


def check_write_key(key: str | None, write_keys: frozenset[str]) -> str:
    if not key:
        raise RequestError(
            401, "unauthorized", "missing writeKey: send it as the Basic auth username"
        )
    if key not in write_keys:
        raise RequestError(401, "unauthorized", "unknown writeKey")
    return key


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Decompress, refusing to inflate past ``limit`` (a gzip bomb is a 413, not an OOM)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, limit + 1)
        if len(out) > limit:
            raise RequestError(413, "payload_too_large", f"body inflates past {limit} bytes")
        if not inflater.eof:
            raise RequestError(400, "invalid_gzip", "gzip body is truncated")
    except zlib.error as exc:
        raise RequestError(400, "invalid_gzip", f"body is not valid gzip: {exc}") from None
    return out


async def read_raw(request: Request, limit: int) -> bytes:
    """The (decompressed) body, within ``limit`` bytes."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in JSON_MEDIA_TYPES:
        raise RequestError(
            415,
            "unsupported_media_type",
            f"Content-Type {content_type!r} is not supported: send application/json "
            "(text/plain JSON is accepted for navigator.sendBeacon)",
        )
    raw = await request.body()
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding == "gzip":
        return _gunzip(raw, limit)
    if encoding not in ("identity", ""):
        raise RequestError(
            415, "unsupported_media_type", f"Content-Encoding {encoding!r}: send gzip or none"
        )
    if len(raw) > limit:
        raise RequestError(413, "payload_too_large", f"body is {len(raw)} bytes; limit {limit}")
    return raw


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, "invalid_json", f"body is not valid JSON: {exc}") from None


async def read_object(request: Request, limit: int) -> dict[str, Any]:
    body = parse_json(await read_raw(request, limit))
    if not isinstance(body, dict):
        raise RequestError(400, "invalid_request", "body must be a JSON object")
    return body
