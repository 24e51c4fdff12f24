"""The scorer's OpenAPI document (``GET /openapi.json``): its public API only.

``GET /v1/leads/{key}``, ``GET /v1/accounts/{account_id}`` and ``GET /healthz``, with the
response schemas generated from the models the server answers with
(:class:`~baton_scorer.lookup.LeadView`, :class:`~baton_scorer.accounts.AccountView`,
:class:`Health`, :class:`~baton_shared.problems.Problem`), the key constraints
:func:`~baton_scorer.lookup.checked_key` and :func:`~baton_scorer.accounts.account_keys`
enforce, the admin bearer token and every
status. The workers' hop paths (``/v1/internal/...``) are not part of it.
"""

from __future__ import annotations

import sys
import unicodedata
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from baton_scorer.accounts import AccountView
from baton_scorer.lookup import MAX_KEY_LENGTH, LeadView
from baton_shared.accounts import MAX_ACCOUNT_ID_LENGTH
from baton_shared.problems import MEDIA_TYPE, Problem

REF = "#/components/schemas/{model}"


class Health(BaseModel):
    """``GET /healthz``: ready once the worker has partitions and is not rebalancing."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, bool] = Field(description="Each dependency: answering or not")
    rules_version: str = Field(description="The scoring rules in use")
    rules_origin: str = Field(description="Where they came from (file or rules topic)")
    core: Literal["native", "python"] = Field(description="The scoring core the stream runs")


def _char_class(chars: list[int]) -> str:
    """``chars`` as the inside of a regex character class, in ranges (ECMA and Python)."""
    out, start = [], 0
    for i, c in enumerate(chars):
        if i + 1 < len(chars) and chars[i + 1] == c + 1:
            continue
        first, last = chars[start], c
        out.append(f"\\u{first:04x}" + (f"-\\u{last:04x}" if last > first else ""))
        start = i + 1
    return "".join(out)


@cache
def key_pattern() -> str:
    """What :func:`~baton_scorer.lookup.checked_key` accepts, besides the length: no
    control character (Unicode category Cc), and not only whitespace (``str.strip``)."""
    chars = [chr(c) for c in range(sys.maxunicode + 1)]
    control = [ord(c) for c in chars if unicodedata.category(c) == "Cc"]
    space = [ord(c) for c in chars if c.isspace() and ord(c) not in control]
    cc, cc_or_space = _char_class(control), _char_class(sorted({*control, *space}))
    return f"^[^{cc}]*[^{cc_or_space}][^{cc}]*$"


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": {"$ref": REF.format(model="Problem")}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    schema = {"$ref": REF.format(model=model.__name__)}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {"required": True, "schema": {"type": "string", "const": "Bearer"}}
}


def _get_one(
    *,
    summary: str,
    operation_id: str,
    tag: str,
    name: str,
    description: str,
    example: str,
    max_length: int,
    view: type[BaseModel],
    found: str,
    missing: str,
) -> dict[str, Any]:
    """A GET of one thing by a key in the path, with the admin token."""
    return {
        "summary": summary,
        "operationId": operation_id,
        "tags": [tag],
        "security": [{"adminToken": []}],
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": description,
                "example": example,
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": max_length,
                    "pattern": key_pattern(),
                },
            }
        ],
        "responses": {
            "200": _json(view, found),
            "401": _problem("Missing or unknown bearer token", _WWW_AUTHENTICATE),
            "404": _problem(missing),
            "422": _problem(
                f"The {name.replace('_', ' ')} is empty, longer than {max_length} characters "
                f"or has a control character: `errors` names `path.{name}` and the rule"
            ),
            "503": _problem("The workers are rebalancing; retry", _RETRY_AFTER),
        },
    }


def _lookup() -> dict[str, Any]:
    return _get_one(
        summary="One lead, by its id, its email or a stitched anonymous id",
        operation_id="lookup_lead",
        tag="leads",
        name="key",
        description="A userId, an email address (any case, surrounding spaces ignored) or "
        "an anonymousId; percent-encode it",
        example="ada@example.com",
        max_length=MAX_KEY_LENGTH,
        view=LeadView,
        found="The lead, its numbers decayed to `as_of`",
        missing="No lead is known by this key",
    )


def _account_lookup() -> dict[str, Any]:
    return _get_one(
        summary="One account: its stage, score and leads",
        operation_id="lookup_account",
        tag="accounts",
        name="account_id",
        description="The company's domain (a URL or any case finds it too) or its group "
        "id, as a lead's `account` names it; percent-encode it",
        example="acme.com",
        max_length=MAX_ACCOUNT_ID_LENGTH,
        view=AccountView,
        found="The account, its numbers decayed to `as_of`",
        missing="No account is known by this id",
    )


def _healthz() -> dict[str, Any]:
    return {
        "summary": "Readiness: partitions assigned, not rebalancing",
        "operationId": "healthz",
        "tags": ["operations"],
        "security": [],
        "responses": {
            "200": _json(Health, "Ready"),
            "503": _json(Health, "Not ready (starting, or rebalancing)"),
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    """The document ``GET /openapi.json`` answers."""
    _, top = models_json_schema(
        [
            (LeadView, "serialization"),
            (AccountView, "serialization"),
            (Health, "serialization"),
            (Problem, "serialization"),
        ],
        ref_template=REF,
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Baton scorer",
            "version": "0.1.0",
            "description": "Look up a lead or an account as the scorer knows it now.",
        },
        "paths": {
            "/v1/leads/{key}": {"get": _lookup()},
            "/v1/accounts/{account_id}": {"get": _account_lookup()},
            "/healthz": {"get": _healthz()},
        },
        "components": {
            "schemas": top["$defs"],
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "BATON_ADMIN_TOKEN",
                }
            },
        },
    }
