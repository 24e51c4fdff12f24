"""Failed authentications per client address: refused after N in a window, for a
bounded number of addresses; a caller that authenticates is never counted."""

from __future__ import annotations

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request

from baton_shared.auth_limits import FailedAuthLimit, FailedAuths
from baton_shared.problems import MEDIA_TYPE, install_problem_handlers


def test_an_address_is_refused_after_n_failures_until_its_window_ends() -> None:
    failures = FailedAuths(max_failures=3, window_seconds=60, max_clients=10)
    for second in range(3):
        assert failures.retry_after("203.0.113.9", now=second) is None
        failures.failed("203.0.113.9", now=second)
    assert failures.retry_after("203.0.113.9", now=10) == 50
    assert failures.retry_after("198.51.100.1", now=10) is None
    assert failures.retry_after("203.0.113.9", now=60) is None


def test_memory_is_bounded_by_forgetting_the_least_recent_address() -> None:
    failures = FailedAuths(max_failures=1, window_seconds=60, max_clients=100)
    for n in range(10_000):
        failures.failed(f"10.0.{n // 256}.{n % 256}", now=0)
    assert len(failures) == 100
    assert failures.retry_after("10.0.39.15", now=1) is not None  # the last one, kept
    assert failures.retry_after("10.0.0.0", now=1) is None  # the first one, forgotten


def test_zero_turns_the_limit_off() -> None:
    failures = FailedAuths(max_failures=0, window_seconds=60, max_clients=10)
    for _ in range(100):
        failures.failed("203.0.113.9", now=0)
    assert failures.retry_after("203.0.113.9", now=0) is None and len(failures) == 0


def app_with_token(token: str) -> FastAPI:
    def require(request: Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {token}":
            raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(dependencies=[Depends(require)])
    install_problem_handlers(app)

    @app.get("/v1/things")
    async def things() -> list[str]:
        return []

    failures = FailedAuths(max_failures=3, window_seconds=60, max_clients=10)
    app.add_middleware(FailedAuthLimit, failures=failures)
    return app


async def test_n_bad_tokens_then_429_while_another_client_with_a_good_token_gets_200() -> None:
    app = app_with_token("good-token")

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 4000))
        return httpx.AsyncClient(transport=transport, base_url="http://t")

    good = {"Authorization": "Bearer good-token"}
    async with client("203.0.113.9") as attacker, client("198.51.100.1") as rep:
        for _ in range(20):  # successes never count
            assert (await rep.get("/v1/things", headers=good)).status_code == 200
        for _ in range(3):
            bad = await attacker.get("/v1/things", headers={"Authorization": "Bearer guess"})
            assert bad.status_code == 401
        refused = await attacker.get("/v1/things", headers={"Authorization": "Bearer guess"})
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["content-type"] == MEDIA_TYPE
        assert refused.json()["type"].endswith("/too-many-failed-authentications")
        assert (await rep.get("/v1/things", headers=good)).status_code == 200
