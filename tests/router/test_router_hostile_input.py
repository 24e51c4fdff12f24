"""The router bounds a request body before reading it (``BATON_ROUTER_MAX_BODY_BYTES``):
over the limit is a 413 problem, before the bearer token is checked, whether the length
is declared or the body streams in chunks; a body within the limit is served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from baton_devstack.services import ServiceProcess
from tests.support.raw_http import chunked_past, refused_unread
from tests.support.schemathesis import live_service

pytestmark = pytest.mark.integration

ADMIN = "admin-token-for-body-limit-tests"
LIMIT = 64 * 1024


@pytest.fixture
def router_process(router_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    env = {**router_env, "BATON_ADMIN_TOKEN": ADMIN, "BATON_ROUTER_MAX_BODY_BYTES": str(LIMIT)}
    with live_service("router", env, tmp_path / "router.log") as proc:
        yield proc


def test_bodies_over_the_limit_are_refused_before_authentication(
    router_process: ServiceProcess,
) -> None:
    head, problem = refused_unread(router_process.url, "/v1/reps")
    assert b"content-type: application/problem+json" in head
    assert problem["status"] == 413 and str(LIMIT) in problem["detail"]

    status, sent = chunked_past(router_process.url, "/v1/reps", LIMIT)
    assert status == 413
    assert sent < 4 * LIMIT  # answered without the rest of the body


def test_a_body_within_the_limit_is_served(router_process: ServiceProcess) -> None:
    rep = {"name": "Ada", "email": "ada@example.com", "webhook_url": "https://x.test/a"}
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=router_process.url, headers=admin, timeout=10) as http:
        created = http.post("/v1/reps", json=rep)
        assert created.status_code == 201, created.text


def test_odd_input_is_a_4xx_not_a_500(router_process: ServiceProcess) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=router_process.url, headers=admin, timeout=10) as http:
        year_9999 = http.post(
            "/v1/leads/lead-1/activity",
            json={"kind": "contacted", "occurred_at": "9999-12-31T23:59:59Z"},
        )
        assert year_9999.status_code == 422, year_9999.text
        [error] = year_9999.json()["errors"]
        assert (error["path"], error["rule"]) == ("body.occurred_at", "out_of_range")
        year_1 = http.post(
            "/v1/leads/lead-1/activity",
            json={"kind": "contacted", "occurred_at": "0001-01-01T00:00:00Z"},
        )
        assert year_1.status_code == 422, year_1.text

        for token in ("tökén", "rtok_ünïcode"):
            odd = http.get("/v1/reps", headers={"Authorization": f"Bearer {token}".encode()})
            assert odd.status_code == 401, odd.text

        deep = b"[" * 10_000 + b"]" * 10_000
        nested = http.post("/v1/reps", content=deep, headers={"Content-Type": "application/json"})
        assert nested.status_code == 400, nested.text
        assert "nest" in nested.json()["detail"]
