"""schemathesis against the running service's own OpenAPI: no 5xx, no schema violations."""

from __future__ import annotations

import base64

import pytest

from baton_devstack.services import ServiceProcess
from tests.ingest.conftest import WRITE_KEY
from tests.support.schemathesis import run_schemathesis

pytestmark = pytest.mark.integration

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance"
)


def test_fuzzing_every_operation_finds_no_server_error_or_schema_violation(
    ingest_process: ServiceProcess,
) -> None:
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    result = run_schemathesis(ingest_process.url, f"Authorization: Basic {auth}", CHECKS, 15)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Tested: 11" in result.stdout  # every operation was exercised
