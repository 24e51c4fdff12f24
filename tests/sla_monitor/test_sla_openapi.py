"""The SLA monitor's OpenAPI document is the truth: schemathesis with every check against
the live monitor (real Kafka and PostgreSQL) finds nothing; errors are problem details."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from baton_devstack.services import ServiceProcess
from tests.support.schemathesis import live_service, run_schemathesis

pytestmark = pytest.mark.integration

ADMIN = "admin-token-for-openapi-tests"


@pytest.fixture
def sla_process(sla_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    env = {**sla_env, "BATON_ADMIN_TOKEN": ADMIN}
    with live_service("sla-monitor", env, tmp_path / "sla.log") as proc:
        yield proc


def test_schemathesis_with_every_check_finds_nothing(sla_process: ServiceProcess) -> None:
    result = run_schemathesis(sla_process.url, f"Authorization: Bearer {ADMIN}", "all", 25)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    paths = httpx.get(f"{sla_process.url}/openapi.json", timeout=10).json()["paths"]
    operations = sum(len(methods) for methods in paths.values())
    assert f"Tested: {operations}" in result.stdout  # every operation was exercised


def test_errors_are_problem_details(sla_process: ServiceProcess) -> None:
    with httpx.Client(base_url=sla_process.url, timeout=10) as http:
        anonymous = http.get("/v1/clocks/at-risk")
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        assert anonymous.json()["detail"].startswith("send 'Authorization: Bearer")

        admin = {"Authorization": f"Bearer {ADMIN}"}
        unix_time = http.get("/v1/compliance", params={"until": "0.5"}, headers=admin)
        assert unix_time.status_code == 422, unix_time.text
        [error] = unix_time.json()["errors"]
        assert error["path"] == "query.until" and "ISO 8601" in error["message"]
        too_many = http.get("/v1/clocks/at-risk", params={"limit": 10_001}, headers=admin)
        [error] = too_many.json()["errors"]
        assert (error["path"], error["rule"]) == ("query.limit", "less_than_equal")

        not_allowed = http.delete("/v1/compliance", headers=admin)
        assert not_allowed.status_code == 405
        assert not_allowed.headers["allow"] == "GET, HEAD"
