"""The SLA monitor bounds a request body before reading it (``BATON_SLA_MAX_BODY_BYTES``):
a declared length over the limit is a 413 problem before the bearer token is checked, a
streamed body is answered without being read, and a request within the limit is served."""

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
def sla_process(sla_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    env = {**sla_env, "BATON_ADMIN_TOKEN": ADMIN, "BATON_SLA_MAX_BODY_BYTES": str(LIMIT)}
    with live_service("sla-monitor", env, tmp_path / "sla.log") as proc:
        yield proc


def test_bodies_over_the_limit_are_refused_before_authentication(
    sla_process: ServiceProcess,
) -> None:
    head, problem = refused_unread(sla_process.url, "/v1/compliance")
    assert b"content-type: application/problem+json" in head
    assert problem["status"] == 413 and str(LIMIT) in problem["detail"]

    # No route of the monitor reads a body: a streamed one is answered unread.
    status, sent = chunked_past(sla_process.url, "/v1/compliance", LIMIT)
    assert status == 405
    assert sent < 4 * LIMIT  # answered without the rest of the body


def test_a_request_within_the_limit_is_served(sla_process: ServiceProcess) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=sla_process.url, headers=admin, timeout=10) as http:
        small = http.request("GET", "/v1/compliance", content=b"{}" * 100)
        assert small.status_code == 200, small.text


def test_odd_input_is_a_4xx_not_a_500(sla_process: ServiceProcess) -> None:
    with httpx.Client(base_url=sla_process.url, timeout=10) as http:
        odd = http.get("/v1/compliance", headers={"Authorization": "Bearer tökén".encode()})
        assert odd.status_code == 401, odd.text
        admin = {"Authorization": f"Bearer {ADMIN}"}
        for edge in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
            report = http.get("/v1/compliance", params={"until": edge}, headers=admin)
            assert report.status_code in (200, 422), report.text
