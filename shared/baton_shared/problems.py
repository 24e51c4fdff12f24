"""One error format for Baton's own APIs: RFC 9457 problem details.

Every error a service answers is ``application/problem+json``: ``type``, ``title``,
``status``, ``detail`` and, on a validation error (422), ``errors``: one entry per broken
field with its ``path`` (``body.weight``), the ``rule`` it broke (``greater_than_equal``)
and a ``message``. :func:`install_problem_handlers` makes an app answer this way (404
and 405 from routing too, 405 with an ``Allow`` header naming every method of the path)
and documents it in the app's OpenAPI; :func:`problem_responses` declares a route's
error statuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://baton.dev/problems/"
REF = "#/components/schemas/Problem"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

DESCRIPTIONS: dict[int, str] = {
    400: "The request body could not be read (not UTF-8, ...)",
    401: "Missing or unknown bearer token",
    403: "The token may not do this",
    404: "No such resource",
    409: "The request conflicts with what exists (a name taken, an id that does not exist)",
    422: "A field breaks a rule: `errors` names each field and rule",
    503: "A dependency is unavailable; retry",
}


class FieldProblem(BaseModel):
    """One broken field of a request."""

    path: str = Field(description="Where: body.<field>, query.<name>, path.<name>, ...")
    rule: str = Field(description="The rule broken, e.g. missing, greater_than_equal")
    message: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str = Field(description="A URI naming the kind of problem")
    title: str = Field(description="The kind of problem, for humans")
    status: int
    detail: str = Field(description="What went wrong this time, and how to fix it")
    errors: list[FieldProblem] | None = Field(
        default=None, description="On a validation error: each broken field"
    )


class ProblemError(Exception):
    """Raise from a route to answer a problem with its own ``type`` (``kind``)."""

    def __init__(
        self,
        status: int,
        detail: str,
        kind: str | None = None,
        errors: Sequence[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status, self.detail, self.kind = status, detail, kind
        self.errors, self.headers = errors, headers


def problem(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    errors: Sequence[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The response for one problem; ``kind`` defaults to the status's slug."""
    title = HTTPStatus(status).phrase
    slug = kind or title.lower().replace(" ", "-")
    body = Problem(type=TYPE_BASE + slug, title=title, status=status, detail=detail)
    if errors is not None:
        body.errors = list(errors)
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def body_too_large(limit: int) -> JSONResponse:
    """The refusal of a body over ``limit`` bytes (``baton_shared.body_limit``)."""
    return problem(413, f"request body over {limit} bytes", kind="payload-too-large")


def field_problems(errors: Iterable[dict[str, Any]]) -> list[FieldProblem]:
    """pydantic's errors as field problems (``loc`` joined with dots)."""
    return [
        FieldProblem(
            path=".".join(str(part) for part in error["loc"]),
            rule=error["type"],
            message=str(error["msg"]).removeprefix("Value error, "),
        )
        for error in errors
    ]


def problem_responses(
    *statuses: int, described: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """A route's documented error responses, e.g. ``problem_responses(404, 409)``;
    ``described`` gives a status its own description."""
    described = described or {}
    return {
        code: {
            "description": described.get(code, DESCRIPTIONS.get(code, "Error")),
            "content": {MEDIA_TYPE: {"schema": {"$ref": REF}}},
        }
        for code in sorted({*statuses, *described})
    }


def allowed_methods(request: Request) -> list[str]:
    """Every method the app's OpenAPI document lists at this request's path (and HEAD
    with GET), so ``Allow`` says exactly what the document does."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods |= {method.upper() for method in operations if method in HTTP_METHODS}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.url.path}"
    elif exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
        detail = "the JSON body nests deeper than the parser allows; flatten it"
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        detail = f"{request.method} is not allowed here; use {headers['Allow']}"
    return problem(exc.status_code, detail, headers=headers or None)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_problems(exc.errors())
    names = ", ".join(dict.fromkeys(error.path for error in errors))
    return problem(422, f"invalid request: {names}", kind="validation-error", errors=errors)


async def _problem_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem(exc.status, exc.detail, kind=exc.kind, errors=exc.errors, headers=exc.headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error as problem details, and say so in the app's OpenAPI: each
    operation's 422 (and 400, for a body that cannot be read) is a :class:`Problem`."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ProblemError, _problem_error)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_problems(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _with_problems(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["FieldProblem"] = FieldProblem.model_json_schema()
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["Problem"].pop("$defs", None)
    for item in document.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                responses["422"] = problem_responses(422)[422]
                if "requestBody" in operation:
                    responses.setdefault("400", problem_responses(400)[400])
    return document
