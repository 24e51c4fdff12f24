"""``make run``'s demo shows an email click and a merged identity: run its email and
sign-in scenes against ingest and the scorer (as processes, real Kafka) and read what
it prints."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import httpx
import pytest

from baton_devstack.demo import Demo
from baton_devstack.ports import free_port
from baton_devstack.services import start_services, stop_services

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ADMIN = "demo-admin-token-0123456789"
WRITE_KEY = "demo-write-key"


async def test_the_demo_prints_an_email_click_mql_and_a_merged_identity(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "BATON_ENV": "test",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "BATON_TOPIC_PREFIX": f"demo{uuid.uuid4().hex[:8]}.",
        "BATON_INGEST_WRITE_KEYS": WRITE_KEY,
        "BATON_ADMIN_TOKEN": ADMIN,
        "BATON_SCORER_DATA_DIR": str(tmp_path / "scorer"),
        "BATON_LOG_FORMAT": "console",
    }
    ports = {"ingest": free_port(), "scorer": free_port()}
    services = await asyncio.to_thread(
        start_services, env, tmp_path / "logs", ports, ("ingest", "scorer")
    )
    demo = Demo(env, tmp_path, {s.spec.name: s.url for s in services})
    printed = ""
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            demo.http = http
            watcher = asyncio.create_task(demo._watch())
            try:
                async with asyncio.timeout(60):
                    await demo.email_and_identity()
                    # The watcher prints the merge transition as it reads it.
                    while " merged into " not in printed:
                        await asyncio.sleep(0.2)
                        printed += capsys.readouterr().out
            finally:
                watcher.cancel()
                printed += capsys.readouterr().out
    finally:
        await asyncio.to_thread(stop_services, services)

    clicks = re.search(
        r"^demo: SendGrid reports 7 email clicks by (\S+@example\.com)$", printed, re.M
    )
    assert clicks, printed
    address = re.escape(clicks[1])
    assert re.search(rf"^{address}: new → MQL \(", printed, re.M), printed
    signs_in = re.search(
        rf"^demo: {address} signs in on the site as user (user-\w+) ", printed, re.M
    )
    assert signs_in, printed
    user = signs_in[1]
    merge = rf"^{user}: new → MQL \(lead {address} merged into {user}: stage mql carried over\)$"
    assert re.search(merge, printed, re.M), printed
    found = rf"^demo: the scorer looks up {address} and finds lead {user} "
    found += rf"\(merged ids: {address}; MQL, score \d"
    assert re.search(found, printed, re.M), printed
