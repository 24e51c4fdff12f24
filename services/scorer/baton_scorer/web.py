"""``GET /v1/leads/{key}``: any lead, by any identity it is known by, from the scorer's state.

The worker a caller asks (any of them) tries ``key`` as a lead id, then as an email as
ingest keys it, then as an anonymous id an identify stitched (the ``aliases`` table
names its lead). Each try is answered by the worker that owns the key's partition of
that table — faust's router names it (``app.router.key_store``, what
``@app.table_route`` uses) — locally, or over ``/v1/internal/...`` with the caller's
token: an anonymous id takes two hops at most, its alias's owner, then its lead's.
A lead merged into another answers as the one it was merged into (one more hop each).
``GET /v1/accounts/{account_id}`` asks the owner of the id in the ``accounts`` table the
same way (:func:`baton_scorer.accounts.account_view`).
The view itself is :mod:`baton_scorer.lookup`, the OpenAPI document of the public route
:mod:`baton_scorer.openapi` (``GET /openapi.json``). Errors are problem details
(:mod:`baton_shared.problems`); nothing about the lead is logged. An address that
failed authentication too often is answered 429 (:mod:`baton_shared.auth_limits`).
"""

from __future__ import annotations

import hmac
import time
from typing import Any
from urllib.parse import quote

import aiohttp
import faust
import orjson
from aiohttp import web
from fastapi.responses import JSONResponse

from baton_scorer.accounts import AccountState, AccountView, account_keys, account_view
from baton_scorer.identity import Alias
from baton_scorer.lookup import (
    MAX_MERGE_HOPS,
    BadKey,
    LeadView,
    checked_key,
    lead_ids_for,
    lead_view,
    merged_into,
)
from baton_scorer.openapi import openapi_document
from baton_scorer.rules_source import RulesSource
from baton_shared.auth_limits import FailedAuths, too_many_failures
from baton_shared.privacy import KeyStoreUnavailable
from baton_shared.problems import FieldProblem, problem

HOP_TIMEOUT = aiohttp.ClientTimeout(total=10)
JSON = {"Content-Type": "application/json"}


class Unavailable(Exception):
    """The owner of a key cannot be reached or named now (a rebalance): retry."""


def problem_response(status: int, detail: str, **kwargs: Any) -> web.Response:
    """:func:`baton_shared.problems.problem` as an aiohttp response."""
    return aiohttp_response(problem(status, detail, **kwargs))


def aiohttp_response(answer: JSONResponse) -> web.Response:
    """A starlette response as an aiohttp one."""
    headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-length"}
    return web.Response(body=answer.body, status=answer.status_code, headers=headers)


class LeadLookup:
    """Finds a lead by any key across the workers, and answers it."""

    def __init__(
        self,
        app: faust.App,
        leads: Any,
        aliases: Any,
        source: RulesSource,
        admin_token: str,
        failures: FailedAuths,
        accounts: Any = None,
    ) -> None:
        self.app = app
        self.tables = {"leads": leads, "aliases": aliases}
        if accounts is not None:
            self.tables["accounts"] = accounts
        self.source = source
        self.token = admin_token.encode()
        self.failures = failures
        self.privacy: Any = None  # privacy mode: keys are pseudonymised, states opened

    def authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), self.token)

    def refusal(self, request: web.Request) -> web.Response | None:
        """None for an authorized caller; else a 401 (counted against its address), or a
        429 once the address has failed too often."""
        address = request.remote or "unknown"
        retry_after = self.failures.retry_after(address, time.monotonic())
        if retry_after is None and self.authorized(request):
            return None
        if retry_after is not None:
            return aiohttp_response(too_many_failures(retry_after))
        self.failures.failed(address, time.monotonic())
        return unauthorized()

    async def find(self, raw_key: str, request: web.Request) -> web.Response:
        """The answer to ``GET /v1/leads/{raw_key}``."""
        if (refusal := self.refusal(request)) is not None:
            return refusal
        try:
            key = checked_key(raw_key)
        except BadKey as exc:
            return invalid_key(exc, "path.key")
        tries = lead_ids_for(key)
        if self.privacy is not None:  # leads are known by the pseudonyms of their ids
            key = self.privacy.lookup_ids(key)
            tries = [(key, "email" if "@" in raw_key else "lead_id")]
        try:
            for lead_id, how in tries:
                found = await self.survivor(lead_id, request)
                if found is not None:
                    return view_response({**found, "matched_by": how})
            alias = await self.ask("aliases", key, request)
            if alias is not None and alias.get("lead_id"):
                found = await self.survivor(alias["lead_id"], request)
                if found is not None:
                    return view_response({**found, "matched_by": "anonymous_id"})
        except Unavailable as exc:
            return retry_later(exc)
        return problem_response(404, "no lead is known by this key")

    async def find_account(self, raw_id: str, request: web.Request) -> web.Response:
        """The answer to ``GET /v1/accounts/{raw_id}``: as given, then as a domain."""
        if (refusal := self.refusal(request)) is not None:
            return refusal
        try:
            keys = account_keys(raw_id)
        except BadKey as exc:
            return invalid_key(exc, "path.account_id")
        try:
            for key in keys:
                found = await self.ask("accounts", key, request)
                if found is not None:
                    view = AccountView.model_validate(found)  # a hop's answer is only JSON
                    return web.Response(body=view.model_dump_json(), headers=JSON)
        except Unavailable as exc:
            return retry_later(exc)
        return problem_response(404, "no account is known by this id")

    async def survivor(self, lead_id: str, request: web.Request) -> dict[str, Any] | None:
        """The view of ``lead_id``, or of the lead it was merged into (None: no such lead)."""
        found = await self.ask("leads", lead_id, request)
        for _ in range(MAX_MERGE_HOPS):
            if found is None or "merged_into" not in found:
                return found
            found = await self.ask("leads", found["merged_into"], request)
            if found is None:
                raise Unavailable("the lead is being merged into another")
        raise Unavailable("the lead's merges are being settled")

    async def ask(self, table: str, key: str, request: web.Request) -> dict[str, Any] | None:
        """What the owner of ``key`` in ``table`` holds for it (None: nothing)."""
        owner = await self.owner(table, key)
        if owner is None:
            return await self.local(table, key)
        url = f"{owner.rstrip('/')}/v1/internal/{table}/{quote(key, safe='')}"
        headers = {"Authorization": request.headers.get("Authorization", "")}
        try:
            async with self.app.http_client.get(url, headers=headers, timeout=HOP_TIMEOUT) as r:
                if r.status == 404:
                    return None
                if r.status != 200:
                    raise Unavailable(f"the worker owning the key answered {r.status}")
                answer: dict[str, Any] = await r.json()
                return answer
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable("the worker owning the key is unreachable") from exc

    async def answer_local(self, table: str, key: str, request: web.Request) -> web.Response:
        """``GET /v1/internal/{table}/{key}``: one hop of :meth:`find`, on the key's owner."""
        if (refusal := self.refusal(request)) is not None:
            return refusal
        try:
            if await self.owner(table, key) is not None:
                raise Unavailable("the key's partition moved to another worker")
        except Unavailable as exc:
            return retry_later(exc)
        found = await self.local(table, key)
        if found is None:
            return problem_response(404, f"not in this worker's {table} table")
        return web.Response(body=orjson.dumps(found), headers=JSON)

    async def owner(self, table: str, key: str) -> str | None:
        """The URL of the worker owning ``key`` in ``table``; None when it is this one."""
        app = self.app
        if app.rebalancing:
            raise Unavailable("the workers are rebalancing")
        changelog = self.tables[table].changelog_topic.get_topic_name()
        try:
            producer = app.producer._ensure_producer()  # the aiokafka producer faust runs
            # The partitioner needs the changelog's partitions (a worker that never
            # wrote to it may not have them yet).
            await producer.client._wait_on_metadata(changelog)
            url = app.router.key_store(self.tables[table].name, key.encode())
        except (KeyError, TypeError) as exc:
            raise Unavailable("the key's owner is not known yet") from exc
        here = app.conf.canonical_url
        return None if (url.host, url.port) == (here.host, here.port) else str(url)

    async def local(self, table: str, key: str) -> dict[str, Any] | None:
        stored = self.tables[table].get(key.encode())
        if not stored:
            return None
        if table == "aliases":
            return {"lead_id": Alias.from_bytes(stored).lead_id}
        if table == "accounts":
            state = AccountState.from_bytes(stored)
            return account_view(key, state, self.source.rules, time.time()).model_dump(mode="json")
        raw = orjson.loads(stored)
        into = merged_into(raw)
        if into is not None:
            return {"merged_into": into}
        if self.privacy is not None:
            try:
                raw = await self.privacy.open_for_lookup(key, raw)
            except KeyStoreUnavailable as exc:
                raise Unavailable("the privacy key store is unreachable") from exc
        rules = self.source.rules
        view = lead_view(key, raw, rules, time.time(), "lead_id")
        return view.model_dump(mode="json")


def view_response(body: dict[str, Any]) -> web.Response:
    """A :class:`LeadView` (validated again: a hop's answer is only JSON)."""
    view = LeadView.model_validate(body)
    return web.Response(body=view.model_dump_json(), headers=JSON)


def invalid_key(exc: BadKey, path: str) -> web.Response:
    errors = [FieldProblem(path=path, rule=exc.rule, message=str(exc))]
    return problem_response(422, str(exc), kind="validation-error", errors=errors)


def retry_later(exc: Unavailable) -> web.Response:
    return problem_response(503, f"{exc}; retry", headers={"Retry-After": "1"})


def unauthorized() -> web.Response:
    return problem_response(
        401,
        "send 'Authorization: Bearer <BATON_ADMIN_TOKEN>'",
        headers={"WWW-Authenticate": "Bearer"},
    )


def install(app: faust.App, lookup: LeadLookup) -> None:
    """Add the lookup's routes, and the OpenAPI document (:mod:`baton_scorer.openapi`)
    of the public ones, to the worker's web server."""

    @app.page("/openapi.json")
    async def openapi(self: Any, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(openapi_document()), headers=JSON)

    # Any key, newlines included (``.`` would leave a key with one to aiohttp's plain 404).
    @app.page(r"/v1/leads/{key:[\s\S]*}")
    async def find_lead(self: Any, request: web.Request, key: str) -> web.Response:
        return await lookup.find(key, request)

    @app.page(r"/v1/accounts/{account_id:[\s\S]*}")
    async def find_account(self: Any, request: web.Request, account_id: str) -> web.Response:
        return await lookup.find_account(account_id, request)

    @app.page("/v1/internal/{table:leads|aliases|accounts}/{key:.+}")
    async def one_hop(self: Any, request: web.Request, table: str, key: str) -> web.Response:
        return await lookup.answer_local(table, key, request)
