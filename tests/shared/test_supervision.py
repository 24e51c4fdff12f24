"""Background loops are restarted when they fail, and readiness says so meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from fastapi import FastAPI

from baton_shared.http import ops_router
from baton_shared.supervision import RESTARTS, Supervisor


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            result = condition()
            if result if isinstance(result, bool) else await result:
                return
            await asyncio.sleep(0.01)


async def test_a_failed_loop_is_restarted_and_reported_down_until_then() -> None:
    runs: list[int] = []
    release = asyncio.Event()

    async def consumer() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise ConnectionError("broker went away")  # the first run dies
        await release.wait()  # the second one keeps going

    before = RESTARTS.labels("consumer")._value.get()
    supervisor = Supervisor(first_s=0.3)
    supervisor.start("consumer", consumer)
    await until(lambda: supervisor.down() == ["consumer"])  # dead, waiting out its backoff
    await until(lambda: len(runs) == 2 and supervisor.down() == [])
    assert RESTARTS.labels("consumer")._value.get() == before + 1
    assert await supervisor.stop(1.0) == []


async def test_readiness_turns_503_while_a_loop_is_down_and_liveness_stays_200() -> None:
    failing = asyncio.Event()

    async def dispatcher() -> None:
        await failing.wait()
        raise RuntimeError("database outage outlasted the retries")

    async def dependencies() -> dict[str, bool]:
        return {"database": True, "kafka": True}

    supervisor = Supervisor(first_s=30.0)  # stays down for the test's duration
    supervisor.start("dispatcher", dispatcher)
    app = FastAPI()
    app.include_router(ops_router(dependencies, supervisor))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ops") as http:
        assert (await http.get("/readyz")).status_code == 200
        failing.set()
        await until(lambda: supervisor.down() == ["dispatcher"])
        for path in ("/readyz", "/healthz"):
            answer = await http.get(path)
            assert answer.status_code == 503
            assert answer.json()["tasks_down"] == ["dispatcher"]
            assert answer.json()["checks"] == {"database": True, "kafka": True, "tasks": False}
        assert (await http.get("/livez")).status_code == 200
    await supervisor.stop(1.0)


async def test_dependency_checks_are_cached_between_probes() -> None:
    calls = 0

    async def dependencies() -> dict[str, bool]:
        nonlocal calls
        calls += 1
        return {"database": True}

    app = FastAPI()
    app.include_router(ops_router(dependencies))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ops") as http:
        answers = await asyncio.gather(*(http.get("/healthz") for _ in range(20)))
    assert {a.status_code for a in answers} == {200}
    assert calls == 1
