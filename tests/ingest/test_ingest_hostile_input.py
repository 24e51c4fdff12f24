"""Ingest bounds a request body before reading it: a body over Segment's 500 KB limit is
a 413 in ingest's error shape, before the writeKey is checked, whether its length is
declared or it streams in chunks; a body within the limit is served as before."""

from __future__ import annotations

import gzip

import httpx
import orjson
import pytest

from baton_devstack.services import ServiceProcess
from baton_ingest.body import MAX_BATCH_BYTES, MAX_EVENT_BYTES
from tests.ingest.conftest import WRITE_KEY
from tests.support.raw_http import chunked_past, refused_unread

pytestmark = pytest.mark.integration


def test_a_declared_length_over_the_limit_is_refused_before_the_body_or_the_write_key(
    ingest_process: ServiceProcess,
) -> None:
    _, body = refused_unread(ingest_process.url, "/v1/batch")
    assert body["code"] == "payload_too_large"
    assert str(MAX_BATCH_BYTES) in body["message"]


def test_a_chunked_body_is_refused_once_it_passes_the_limit_without_the_rest(
    ingest_process: ServiceProcess,
) -> None:
    status, sent = chunked_past(ingest_process.url, "/v1/batch", MAX_BATCH_BYTES)
    assert status == 413
    assert sent < 2 * MAX_BATCH_BYTES  # the server answered without waiting for more


def test_a_body_within_the_limit_is_served(ingest_process: ServiceProcess) -> None:
    event = {"userId": "u-1", "event": "Signed Up", "messageId": "m-limit-1"}
    with httpx.Client(base_url=ingest_process.url, auth=(WRITE_KEY, ""), timeout=10) as http:
        assert http.post("/v1/track", json=event).status_code == 200
        # gzip: the wire bytes are bounded here, the inflated bytes by the body reader.
        small = gzip.compress(orjson.dumps({"batch": [{**event, "type": "track"}]}))
        zipped = http.post("/v1/batch", content=small, headers={"Content-Encoding": "gzip"})
        assert zipped.status_code == 200, zipped.text
        bomb = gzip.compress(b" " * (MAX_BATCH_BYTES + 1))
        inflated = http.post("/v1/batch", content=bomb, headers={"Content-Encoding": "gzip"})
        assert inflated.status_code == 413


def test_a_shared_batch_context_counts_towards_each_events_size_and_nul_checks(
    ingest_process: ServiceProcess,
) -> None:
    big_context = {"blob": "x" * 300_000}  # 1,000 copies would be 300 MB of records
    events = [{"type": "track", "userId": f"u-{i}", "event": "Viewed"} for i in range(1000)]
    with httpx.Client(base_url=ingest_process.url, auth=(WRITE_KEY, ""), timeout=30) as http:
        amplified = http.post("/v1/batch", json={"batch": events, "context": big_context})
        assert amplified.status_code == 400, amplified.text
        rejected = amplified.json()["rejected"]
        assert [r["index"] for r in rejected] == list(range(1000))
        assert rejected[7]["path"] == "batch.7"
        assert (
            f"larger than {MAX_EVENT_BYTES} bytes with the batch's context"
            in (rejected[7]["message"])
        )

        own_context = {**events[0], "context": {"ip": "192.0.2.1"}}
        mixed = http.post(
            "/v1/batch", json={"batch": [events[1], own_context], "context": big_context}
        )
        assert mixed.status_code == 200, mixed.text
        assert mixed.json()["accepted"] == 1  # the event with its own context inherits nothing
        assert mixed.json()["rejected"][0]["index"] == 0

        poisoned = {"batch": events[:2], "context": {"page": {"title": "a\u0000b"}}}
        refused = http.post("/v1/batch", json=poisoned)
        assert refused.status_code == 400, refused.text
        paths = [r["path"] for r in refused.json()["rejected"]]
        assert paths == ["batch.0.context.page.title", "batch.1.context.page.title"]


def test_json_nested_past_the_parsers_depth_is_a_400_saying_so(
    ingest_process: ServiceProcess,
) -> None:
    deep = b'{"batch": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    with httpx.Client(base_url=ingest_process.url, auth=(WRITE_KEY, ""), timeout=10) as http:
        nested = http.post("/v1/batch", content=deep, headers={"Content-Type": "application/json"})
    assert nested.status_code == 400, nested.text
    assert nested.json()["code"] == "invalid_json" and "depth" in nested.json()["message"]
