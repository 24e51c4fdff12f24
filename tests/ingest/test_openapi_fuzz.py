"""Ingest's OpenAPI document is the truth: schemathesis with every check against the live
service (real Kafka) finds nothing, with the Segment-compatible error body declared."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from baton_devstack.services import ServiceProcess
from tests.ingest.conftest import WRITE_KEY, start_ingest
from tests.support.schemathesis import UNLIMITED_FAILED_AUTHS, run_schemathesis

pytestmark = pytest.mark.integration

OPERATIONS = 13


@pytest.fixture
def ingest_process(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> Iterator[ServiceProcess]:
    proc = start_ingest(kafka_bootstrap, f"{unique_name}.", tmp_path, **UNLIMITED_FAILED_AUTHS)
    try:
        yield proc
    finally:
        proc.stop()


def test_schemathesis_with_every_check_finds_nothing(ingest_process: ServiceProcess) -> None:
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    result = run_schemathesis(ingest_process.url, f"Authorization: Basic {auth}", "all", 25)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert f"Tested: {OPERATIONS}" in result.stdout  # every operation was exercised


def test_the_document_declares_what_a_client_sees(ingest_process: ServiceProcess) -> None:
    document = httpx.get(f"{ingest_process.url}/openapi.json").json()
    track = document["paths"]["/v1/track"]["post"]
    assert "parameters" not in track
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert set(track["requestBody"]["content"]) == {"application/json", "text/plain"}
    assert track["security"] == [{"writeKey": []}]
    assert document["components"]["securitySchemes"]["writeKey"]["scheme"] == "basic"
    responses = track["responses"]
    assert set(responses) == {"200", "400", "401", "413", "415", "429", "503"}
    error = responses["400"]["content"]["application/json"]["schema"]["$ref"]
    assert error == "#/components/schemas/ErrorBody"
    assert all("Retry-After" in responses[status]["headers"] for status in ("429", "503"))
    body = track["requestBody"]["content"]["application/json"]["schema"]
    assert body["allOf"][1]["required"] == ["event"]  # a track names its event


def test_an_error_is_the_segment_shape_the_document_declares(
    ingest_process: ServiceProcess,
) -> None:
    answer = httpx.post(
        f"{ingest_process.url}/v1/track", json={"userId": "u-1"}, auth=(WRITE_KEY, ""), timeout=10
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "code": "invalid_request",
        "message": "event: required for a track call",
        "path": "event",
    }
