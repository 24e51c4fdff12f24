"""The router's FastAPI application: the service's lifespan, the ops and ``/v1`` routes,
and the mapping of the stores' errors to problem details (``baton_shared.problems``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from baton_router.actions import KafkaUnavailable
from baton_router.api import api_router
from baton_router.config import RouterSettings
from baton_router.service import RouterService
from baton_router.store.configuration import InvalidReference, NotFound
from baton_shared.auth_limits import FailedAuthLimit, failed_auths
from baton_shared.body_limit import BodyLimit
from baton_shared.http import ops_router
from baton_shared.problems import (
    FieldProblem,
    body_too_large,
    install_problem_handlers,
    problem,
)


def create_app(settings: RouterSettings) -> FastAPI:
    service = RouterService(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app = FastAPI(title="Baton router", version="0.1.0", lifespan=lifespan)
    app.state.service = service
    app.include_router(ops_router(service.readiness, service.supervisor))
    app.include_router(api_router())
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, refuse=body_too_large)
    app.add_middleware(FailedAuthLimit, failures=failed_auths(settings))

    @app.exception_handler(KafkaUnavailable)
    async def _kafka_down(_: Request, exc: KafkaUnavailable) -> JSONResponse:
        detail = "Kafka unavailable; the activity was not recorded"
        return problem(503, detail, headers={"Retry-After": "5"})

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return problem(404, str(exc))

    @app.exception_handler(InvalidReference)
    async def _invalid(_: Request, exc: InvalidReference) -> JSONResponse:
        # The body is well formed but names something that does not exist, or a name
        # another resource has: a conflict with what is stored.
        path = ".".join(map(str, ("body", *exc.field)))
        error = FieldProblem(path=path, rule=exc.rule, message=exc.message)
        return problem(409, str(exc), kind=exc.rule.replace("_", "-"), errors=[error])

    @app.exception_handler(DBAPIError)
    async def _bad_data(request: Request, exc: DBAPIError) -> JSONResponse:
        # PostgreSQL refused the value itself (SQLSTATE class 22: a NUL character, a
        # string too long for its column, ...): the caller's input, not a server fault.
        if _sqlstate(exc).startswith("22"):
            message = f"value not storable: {_first_line(exc)}"
            error = FieldProblem(path="body", rule="data_exception", message=message)
            return problem(422, message, kind="validation-error", errors=[error])
        raise exc

    return app


def _sqlstate(exc: BaseException) -> str:
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str):
            return state
        seen = getattr(seen, "orig", None) or seen.__cause__
    return ""


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).splitlines()[0][:200] if exc.orig else "invalid value"
