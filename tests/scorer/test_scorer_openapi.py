"""The scorer's OpenAPI document is the truth: schemathesis with every check against a live
worker on the real broker finds nothing, a real lead's view matches the document's
response schema, and the workers' internal hop paths are neither documented nor open."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import schemathesis

from baton_devstack.services import ServiceProcess
from baton_scorer.lookup import BadKey, checked_key
from baton_scorer.openapi import key_pattern
from tests.scorer.worker import event, produce, rules_worker_env, start_worker, wait_until
from tests.support.schemathesis import run_schemathesis

ADMIN = "scorer-openapi-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
OPERATIONS = 3  # GET /v1/leads/{key}, GET /v1/accounts/{account_id}, GET /healthz
EXAMPLE = "ada@example.com"  # the key parameter's documented example
RULES = """
name: openapi-test
thresholds: {mql: 50, sql: 100, hysteresis: 10}
engagement:
  half_life_days: 14
  pages: {pricing: 40}
accounts:
  thresholds: {engaged: 60, sales_ready: 150}
"""


@pytest.fixture
async def worker(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    """A worker on the real broker that has scored the documented example lead."""
    env, _ = await rules_worker_env(kafka_bootstrap, tmp_path, RULES)
    proc = start_worker({**env, "BATON_ADMIN_TOKEN": ADMIN}, tmp_path / "scorer.log")
    try:
        now = datetime.now(UTC)
        page = event("o1", EXAMPLE, "page", now, email=EXAMPLE, page_category="pricing")
        await produce(kafka_bootstrap, f"{env['BATON_TOPIC_PREFIX']}leads.events", [page])
        async with httpx.AsyncClient(base_url=proc.url, headers=AUTH, timeout=10) as http:

            async def scored() -> bool:
                return (await http.get(f"/v1/leads/{EXAMPLE}")).status_code == 200

            await wait_until(scored, 30, "the example lead to be scored")
        yield proc
    finally:
        proc.stop()


@pytest.mark.integration
def test_schemathesis_with_every_check_finds_nothing(worker: ServiceProcess) -> None:
    result = run_schemathesis(worker.url, f"Authorization: Bearer {ADMIN}", "all", 200)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert f"Tested: {OPERATIONS}" in result.stdout  # every operation was exercised


@pytest.mark.integration
async def test_real_answers_match_the_document(worker: ServiceProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{worker.url}/openapi.json")
    lookup = schema["/v1/leads/{key}"]["GET"]
    async with httpx.AsyncClient(base_url=worker.url, timeout=10) as http:
        answers = [
            await http.get(f"/v1/leads/{EXAMPLE}", headers=AUTH),
            await http.get(f"/v1/leads/{EXAMPLE}"),
            await http.get("/v1/leads/nobody", headers=AUTH),
            await http.get("/v1/leads/%20", headers=AUTH),
            await http.get("/v1/leads/a%0Ab", headers=AUTH),
        ]
        assert [a.status_code for a in answers] == [200, 401, 404, 422, 422]
        for answer in answers:
            lookup.validate_response(answer)  # raises on any mismatch
        schema["/healthz"]["GET"].validate_response(await http.get("/healthz"))
        account = schema["/v1/accounts/{account_id}"]["GET"]

        async def rolled_up() -> bool:  # the example lead's account
            return (await http.get("/v1/accounts/example.com", headers=AUTH)).status_code == 200

        await wait_until(rolled_up, 30, "the example lead's account")
        answers = [
            await http.get("/v1/accounts/example.com", headers=AUTH),
            await http.get("/v1/accounts/example.com"),
            await http.get("/v1/accounts/nowhere.example", headers=AUTH),
            await http.get("/v1/accounts/a%0Ab", headers=AUTH),
        ]
        assert [a.status_code for a in answers] == [200, 401, 404, 422]
        for answer in answers:
            account.validate_response(answer)

        document = (await http.get("/openapi.json")).json()
        assert document["openapi"].startswith("3.1")
        assert not [path for path in document["paths"] if "internal" in path]
        responses = document["paths"]["/v1/leads/{key}"]["get"]["responses"]
        assert set(responses) == {"200", "401", "404", "422", "503"}
        assert "Retry-After" in responses["503"]["headers"]
        # The hop paths workers use are refused to a caller without the token.
        hops = ("leads/" + EXAMPLE, "aliases/anon-x", "accounts/example.com")
        for path in (f"/v1/internal/{hop}" for hop in hops):
            refused = await http.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert "ada" not in refused.text


def accepted(key: str) -> bool:
    try:
        checked_key(key)
    except BadKey:
        return False
    return True


@pytest.mark.parametrize("around", ["", "a", " ", "a\u3000b"])
def test_the_documented_key_pattern_is_what_the_server_checks(around: str) -> None:
    pattern = re.compile(key_pattern().removesuffix("$") + r"\Z")  # ECMA's `$`
    # Every character of the BMP (where all control and space characters are), and some beyond.
    for code in [*range(0x10000), *range(0x10000, sys.maxunicode + 1, 251)]:
        key = around + chr(code) + around
        assert bool(pattern.match(key)) == accepted(key), (around, hex(code))
