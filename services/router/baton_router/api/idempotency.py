"""``Idempotency-Key`` on the POSTs that create or record something.

A route opts in with ``dependencies=[IDEMPOTENT]`` (which documents the header and the
409) on a router built with ``route_class=IdempotentRoute``. A request with the header is run
once per (caller, key): a retry with the same method, path and body gets the first
response again, with ``Idempotent-Replayed: true``; the same key on another request is
a 409. Only a successful (2xx) response is kept, for 24 hours
(:data:`~baton_router.store.idempotency.KEY_TTL`); a refused request leaves the key
free. Without the header a route behaves as it always did.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, HTTPException, Request, Response, status
from fastapi.routing import APIRoute

from baton_router.store.configuration import token_hash
from baton_router.store.idempotency import WAIT_SECONDS, KeyInUse
from baton_shared.clock import utcnow
from baton_shared.problems import problem_responses

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
CONFLICT = (
    "The Idempotency-Key was used with a different request, or a request with it is still running"
)
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            description="Any unique string (a UUID); a retry with the same key and body "
            "returns the first response instead of acting again (kept 24 h)",
        ),
    ] = None,
) -> str | None:
    return key


IDEMPOTENT = Depends(idempotency_key)


def caller_of(request: Request) -> str:
    """Whose key space a request's key is in: the admin's, or one rep token's."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    admin = request.app.state.service.settings.admin_token
    if scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), admin.encode()):
        return "admin"
    return f"rep:{token_hash(token)}"


def request_hash(request: Request, body: bytes) -> str:
    """The request a key stands for: method, path, query and body (JSON compared by
    value, so key order and whitespace do not matter)."""
    try:
        body = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        pass
    digest = hashlib.sha256(f"{request.method} {request.url.path}?{request.url.query}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def once(handler: Handler) -> Handler:
    """``handler`` run at most once per (caller, key)."""

    async def run(request: Request) -> Response:
        key = request.headers.get(HEADER)
        if not key or len(key) > MAX_KEY_LENGTH:
            return await handler(request)  # no key; or a bad one, which validation refuses
        digest = request_hash(request, await request.body())
        store = request.app.state.service.stores.idempotency
        try:
            async with store.claim(caller_of(request), key, digest, utcnow()) as claim:
                if claim.stored is None:
                    response = await handler(request)
                    body = getattr(response, "body", None)
                    if 200 <= response.status_code < 300 and isinstance(body, bytes):
                        await claim.keep(response.status_code, body, response.media_type)
                    return response
        except KeyInUse:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"a request with this {HEADER} is still running; retry shortly",
                headers={"Retry-After": str(WAIT_SECONDS)},
            ) from None
        stored = claim.stored
        if stored.request_hash != digest:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"this {HEADER} was already used for a different request (method, path or "
                "body); use a new key for a new request",
            )
        return Response(
            stored.body,
            status_code=stored.status_code,
            media_type=stored.media_type,
            headers={REPLAYED: "true"},
        )

    return run


class IdempotentRoute(APIRoute):
    """A route that honours ``Idempotency-Key`` when it declares :data:`IDEMPOTENT`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        declared = kwargs.get("dependencies") or ()
        if any(getattr(d, "dependency", None) is idempotency_key for d in declared):
            own = kwargs.get("responses") or {}
            conflict = problem_responses(409, described={409: CONFLICT})
            if 409 in own:
                conflict[409]["description"] = f"{own[409]['description']}; or: {CONFLICT}"
            kwargs["responses"] = {**own, **conflict}
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if any(d.call is idempotency_key for d in self.dependant.dependencies):
            return once(handler)
        return handler
