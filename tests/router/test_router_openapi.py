"""The router's OpenAPI document is the truth: schemathesis with every check against the
live router (real Kafka and PostgreSQL) finds nothing, and each error is a problem
details document a client can rely on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from baton_devstack.services import ServiceProcess
from tests.support.schemathesis import live_service, run_schemathesis

pytestmark = pytest.mark.integration

ADMIN = "admin-token-for-openapi-tests"
OPERATIONS = 37


@pytest.fixture
def router_process(router_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    env = {**router_env, "BATON_ADMIN_TOKEN": ADMIN}
    with live_service("router", env, tmp_path / "router.log") as proc:
        yield proc


def test_schemathesis_with_every_check_finds_nothing(router_process: ServiceProcess) -> None:
    result = run_schemathesis(
        router_process.url, f"Authorization: Bearer {ADMIN}", "all", 10, timeout=400
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert f"Tested: {OPERATIONS}" in result.stdout  # every operation was exercised


def problem_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"].startswith("https://")
    assert body["title"] and body["detail"]
    return body


def test_every_error_is_a_problem_details_document(router_process: ServiceProcess) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=router_process.url, headers=admin, timeout=10) as http:
        invalid = problem_of(http.post("/v1/reps", json={"name": "Ada", "weight": 0}), 422)
        rules = {(e["path"], e["rule"]) for e in invalid["errors"]}
        assert {("body.email", "missing"), ("body.weight", "greater_than_equal")} <= rules
        assert "body.weight" in invalid["detail"]
        rep = {"name": "Ada", "email": "ada@example.com", "webhook_url": "https://x.test/a"}
        coerced = problem_of(http.post("/v1/reps", json={**rep, "capacity": False}), 422)
        [error] = coerced["errors"]  # false is no number, though pydantic would read it as 0
        assert (error["path"], error["rule"]) == ("body.capacity", "int_type")

        ghost = "00000000-0000-0000-0000-000000000001"
        assert "no rep" in problem_of(http.get(f"/v1/reps/{ghost}"), 404)["detail"]
        assert "/v1/nowhere" in problem_of(http.get("/v1/nowhere"), 404)["detail"]

        not_allowed = http.put("/v1/pools")
        problem_of(not_allowed, 405)
        assert not_allowed.headers["allow"].split(", ") == ["GET", "HEAD", "POST"]

        conflict = problem_of(http.post("/v1/rules", json=rule_for(ghost)), 409)
        assert conflict["errors"] == [
            {"path": "body.pool_id", "rule": "unknown_reference", "message": f"no pool {ghost}"}
        ]

        anonymous = http.get("/v1/reps", headers={"Authorization": ""})
        problem_of(anonymous, 401)
        assert anonymous.headers["www-authenticate"] == "Bearer"
        rep = http.post("/v1/reps", json=rep).json()
        token = http.post(f"/v1/reps/{rep['id']}/token").json()["token"]
        as_rep = http.get("/v1/pools", headers={"Authorization": f"Bearer {token}"})
        assert "admin" in problem_of(as_rep, 403)["detail"]

    document = httpx.get(f"{router_process.url}/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    patch = document["paths"]["/v1/pools/{pool_id}"]["patch"]["responses"]
    assert set(patch) >= {"200", "400", "401", "403", "404", "409", "422"}
    assert list(patch["404"]["content"]) == ["application/problem+json"]


def rule_for(pool_id: str) -> dict:
    return {
        "name": "r",
        "pool_id": pool_id,
        "conditions": [{"field": "score", "op": "gte", "value": 1}],
    }
