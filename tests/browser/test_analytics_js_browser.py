"""Segment's browser library, as published on npm, sends a site's visitors to Baton.

A page served from another origin loads ``@segment/analytics-next`` (bundled by esbuild,
not modified) in headless chromium, pointed at ingest by its load settings; it calls
identify, page and track, and sends a beacon when the visitor leaves. The events must
land normalised in ``leads.events``, with no request to anywhere but the two local
servers. ``install.sh`` installs chromium and the pinned npm packages; under CI a
missing tool fails the test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from tests.ingest.conftest import WRITE_KEY, start_ingest
from tests.support.kafka import wait_for_record

pytestmark = pytest.mark.integration

HARNESS = Path(__file__).parent
CHROMIUM = os.environ.get("BATON_CHROMIUM", "/usr/bin/chromium")


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser test cannot run in CI: {reason}")
    pytest.skip(f"{reason} (run tests/browser/install.sh)")


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """page.js and analytics-next as one script, built the way a site's bundler would."""
    installed = subprocess.run(
        [str(HARNESS / "install.sh")], capture_output=True, text=True, timeout=600
    )
    if installed.returncode != 0:
        _missing(f"install.sh failed: {installed.stderr.strip()[-500:]}")
    if not Path(CHROMIUM).exists() or shutil.which("node") is None:
        _missing(f"no {CHROMIUM} or no node")
    out = tmp_path_factory.mktemp("bundle") / "page.bundle.js"
    subprocess.run(
        [
            str(HARNESS / "node_modules/.bin/esbuild"),
            str(HARNESS / "page.js"),
            "--bundle",
            "--format=iife",
            "--target=es2020",
            '--define:process.env.NODE_ENV="production"',
            f"--outfile={out}",
            "--log-level=warning",
        ],
        check=True,
        timeout=120,
    )
    return out.read_bytes()


class Site:
    """The website: another origin (own port) serving a page and its script."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, bytes]] = {}
        routes = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                content_type, body = routes.get(self.path.split("?")[0], ("text/plain", b""))
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    server = Site()
    try:
        yield server
    finally:
        server.close()


def page_html(config: dict[str, str]) -> bytes:
    return (
        b"<!doctype html><html><head><title>Pricing - Acme</title>"
        b"<script>window.BATON = " + orjson.dumps(config) + b"</script>"
        b'<script src="/page.bundle.js"></script></head><body>Pricing</body></html>'
    )


async def start_driver(url: str, profile: Path) -> asyncio.subprocess.Process:
    """The browser on ``url``; it stays open until the driver's stdin is closed."""
    return await asyncio.create_subprocess_exec(
        "node",
        str(HARNESS / "drive.mjs"),
        url,
        str(profile),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=HARNESS,
    )


async def read_report(driver: asyncio.subprocess.Process) -> list[dict[str, Any]]:
    """What the browser did, up to the visitor leaving the page."""
    assert driver.stdout is not None
    report: list[dict[str, Any]] = []
    async with asyncio.timeout(90):
        while not report or report[-1]["event"] not in ("left", "error"):
            line = await driver.stdout.readline()
            if not line:
                break
            report.append(orjson.loads(line))
    return report


@pytest.mark.parametrize("strategy", ["standard", "batching"])
async def test_analytics_next_in_chromium_lands_identify_page_and_track_in_leads_events(
    strategy: str,
    bundle: bytes,
    site: Site,
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
) -> None:
    origin = site.origin
    prefix = f"{unique_name}."
    ingest = start_ingest(kafka_bootstrap, prefix, tmp_path, BATON_INGEST_CORS_ORIGINS=origin)
    user_id = f"web-{uuid.uuid4().hex[:12]}"
    api_host = f"127.0.0.1:{ingest.port}/v1"
    site.files["/page.bundle.js"] = ("text/javascript", bundle)
    site.files["/favicon.ico"] = ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"/>')
    site.files["/pricing"] = (
        "text/html",
        page_html(
            {"writeKey": WRITE_KEY, "apiHost": api_host, "userId": user_id, "strategy": strategy}
        ),
    )
    driver = await start_driver(f"{origin}/pricing?utm_source=ads", tmp_path / "profile")
    try:
        report = await read_report(driver)
        problems = [
            e
            for e in report
            if e["event"] in ("error", "pageerror", "failed")
            or (e["event"] == "console" and e["type"] == "error")
        ]
        assert report and report[-1]["event"] == "left", report
        assert not problems, report
        assert {"event": "calls", "result": "sent"} in report

        wanted = {
            ("identify", None),
            ("page", None),
            ("track", "Demo Requested"),
            ("track", "Page Left"),
        }
        seen: dict[tuple[str, str | None], dict[str, Any]] = {}

        def all_arrived(record: dict[str, Any]) -> bool:
            if record["user_id"] == user_id:
                seen[(record["type"], record["name"] if record["type"] == "track" else None)] = (
                    record
                )
            return wanted <= seen.keys()

        await wait_for_record(kafka_bootstrap, f"{prefix}leads.events", all_arrived, 30)
    finally:
        assert driver.stdin is not None
        driver.stdin.close()
        try:
            async with asyncio.timeout(30):
                await driver.wait()
        except TimeoutError:
            driver.kill()
        ingest.stop()

    # Nothing left the machine: every request went to the site or to ingest.
    hosts = {urlsplit(e["url"]).netloc for e in report if e["event"] == "request"}
    assert hosts <= {urlsplit(origin).netloc, f"127.0.0.1:{ingest.port}"}, hosts
    to_ingest = [e for e in report if e["event"] == "response" and f":{ingest.port}/" in e["url"]]
    paths = {urlsplit(e["url"]).path for e in to_ingest if e["method"] == "POST"}
    # What analytics-next posted to (the beacon, /v1/t, may be seen or not as the page goes).
    posted = {"/v1/b"} if strategy == "batching" else {"/v1/i", "/v1/p", "/v1/t"}
    assert posted <= paths <= posted | {"/v1/t"}, paths
    assert all(e["status"] == 200 for e in to_ingest), to_ingest

    identify, page, track = (
        seen[("identify", None)],
        seen[("page", None)],
        seen[("track", "Demo Requested")],
    )
    for event in (identify, page, track):
        assert event["lead_id"] == user_id
        assert event["source"] == "segment"
        assert event["event_id"].startswith("ajs-")  # analytics.js's own messageId
        assert event["context"]["library"]["name"] == "analytics.js"
        assert "HeadlessChrome" in (event["user_agent"] or "")
        assert event["campaign"] == {"source": "ads"}
    assert identify["email"] == "ada.lovelace@example.com"
    assert identify["traits"]["company"] == "Acme"
    assert page["page"]["path"] == "/pricing"
    assert page["page"]["title"] == "Pricing - Acme"
    assert page["page_category"] == "pricing"
    assert track["properties"] == {"plan": "team"}
    assert track["page"]["url"] == f"{origin}/pricing?utm_source=ads"
    left = seen[("track", "Page Left")]  # the beacon: no messageId, so one of ingest's
    assert left["event_id"].startswith("ingest-")
