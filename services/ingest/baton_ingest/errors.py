"""The error shape every ingest response uses, which the Segment SDKs parse."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response
from pydantic import BaseModel, Field

from baton_ingest.metrics import REJECTED


class Rejection(BaseModel):
    index: int = Field(description="Position of the event in the batch")
    path: str = Field(description="The field that broke a rule")
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable: unauthorized, invalid_json, ...")
    message: str = Field(description="What is wrong and how to fix it")
    path: str | None = None
    rejected: list[Rejection] | None = None


class Accepted(BaseModel):
    success: bool = True
    accepted: int | None = None
    rejected: list[Rejection] | None = None


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status_code, headers=headers, media_type="application/json"
    )


class RequestError(Exception):
    """A request-level failure: status, code, message (and headers such as Retry-After)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers, self.extra = headers or {}, extra

    def response(self) -> Response:
        body = {"code": self.code, "message": self.message, **self.extra}
        return json_response(body, status_code=self.status, headers=self.headers)


def body_too_large(limit: int) -> Response:
    """The refusal of a request body over ``limit`` bytes (``baton_shared.body_limit``)."""
    REJECTED.labels(source="request", reason="payload_too_large").inc()
    return RequestError(413, "payload_too_large", f"request body over {limit} bytes").response()


def too_many_failed_authentications(retry_after: int) -> Response:
    """The refusal of a caller after too many unknown writeKeys (``baton_shared.auth_limits``)."""
    REJECTED.labels(source="request", reason="too_many_failed_authentications").inc()
    message = f"too many failed authentications from this address; retry in {retry_after} s"
    headers = {"Retry-After": str(retry_after)}
    return RequestError(429, "too_many_failed_authentications", message, headers).response()
