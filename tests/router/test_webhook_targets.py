"""Webhook targets are checked (SSRF): with the check on, URLs that resolve to loopback,
link-local, private or metadata addresses are refused at registration (422 naming the
field) and again at delivery (the row retries, then is dead, saying why; nothing is
sent); the allowlist lets on-premise receivers through; redirects are not followed and
answers are read up to a cap."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiohttp
import pytest

from baton_devstack.webhook_sink import WebhookReceiver
from baton_router.signing import new_secret
from baton_router.webhook_targets import (
    RESPONSE_CAP_BYTES,
    CheckedResolver,
    TargetPolicy,
    address_refusal,
    parse_allow,
    post,
    refusal_in,
)
from tests.router import test_router_api as base
from tests.router.test_router_api import Api, feed, running_api, transition
from tests.support.waiting import wait_until
from tests.support.webhooks import no_delivery

receiver = base.receiver
CHECKED = TargetPolicy(enforce=True)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("10.1.2.3", "private"),
        ("192.168.0.7", "private"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("64:ff9b::a01:203", "private"),  # NAT64 of 10.1.2.3
        ("100.64.0.1", "not a public"),  # carrier-grade NAT
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_non_public_addresses_are_refused(address: str, why: str) -> None:
    refusal = address_refusal(ipaddress.ip_address(address))
    assert refusal is not None and why in refusal


def test_public_addresses_pass_and_the_allowlist_and_the_switch_let_through() -> None:
    assert address_refusal(ipaddress.ip_address("93.184.216.34")) is None
    assert address_refusal(ipaddress.ip_address("2606:4700::1111")) is None
    networks, hosts = parse_allow(["10.9.0.0/16", "hooks.internal", " "])
    allowing = TargetPolicy(True, networks, hosts)
    assert allowing.refusal("crm.corp", ["10.9.1.1"]) is None
    assert "crm.corp resolves to 10.1.2.3, a private address" in str(
        allowing.refusal("crm.corp", ["10.9.1.1", "10.1.2.3"])  # every address counts
    )
    assert allowing.refusal("hooks.internal", ["127.0.0.1"]) is None
    assert TargetPolicy(enforce=False).refusal("localhost", ["127.0.0.1"]) is None
    assert CHECKED.refusal_for_url("http://[::1]:8080/x") is not None
    assert CHECKED.refusal_for_url("https://hooks.example.com/x") is None  # resolver's job
    with pytest.raises(ValueError, match="not a CIDR"):
        parse_allow(["10.0.0.0/33"])


class _Answering(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/redirect":
            self.send_response(307)
            self.send_header("Location", self.server.target)  # type: ignore[attr-defined]
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"x" * (4 * RESPONSE_CAP_BYTES)
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answering(receiver: WebhookReceiver) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answering)
    server.target = f"{receiver.url}/stolen"  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_redirects_are_not_followed_and_answers_are_read_up_to_a_cap(
    answering: str, receiver: WebhookReceiver
) -> None:
    async with aiohttp.ClientSession() as http:
        moved = await post(http, TargetPolicy(), f"{answering}/redirect", b"{}", {})
        assert moved.status == 307
        big = await post(http, TargetPolicy(), f"{answering}/big", b"{}", {})
        assert big.status == 500 and 0 < len(big.body) <= RESPONSE_CAP_BYTES
    await no_delivery(receiver, within=0.2)


async def test_the_resolver_refuses_a_host_name_that_resolves_to_loopback(
    answering: str,
) -> None:
    resolver = CheckedResolver(CHECKED)
    connector = aiohttp.TCPConnector(resolver=resolver)
    async with aiohttp.ClientSession(connector=connector) as http:
        url = answering.replace("127.0.0.1", "localhost") + "/big"
        with pytest.raises(aiohttp.ClientConnectorError) as refused:
            await post(http, CHECKED, url, b"{}", {})
    assert "localhost resolves to" in str(refusal_in(refused.value))
    assert "loopback" in str(refusal_in(refused.value))


@pytest.mark.integration
async def test_the_router_refuses_unsafe_targets_at_registration_and_at_delivery(
    kafka_bootstrap: str, pg_cluster, unique_name: str, producer, receiver: WebhookReceiver
) -> None:
    env = {"BATON_ROUTER_WEBHOOK_CHECK": "true", "BATON_ROUTER_WEBHOOK_ALLOW": "10.9.0.0/16"}
    async with running_api(kafka_bootstrap, pg_cluster, unique_name, **env) as api:
        await _refused_at_registration(api)
        # Targets stored before the check (or whose DNS changed since) are refused when
        # delivered: the row retries, then is dead with the reason; nothing is sent.
        port = receiver.url.rsplit(":", 1)[1]
        for name, host in (("Ada", "localhost"), ("Bob", "127.0.0.1")):
            url = f"http://{host}:{port}/{name.lower()}"
            await api.service.stores.config.create_rep(name, f"{name}@x.com", url, new_secret())
        for _ in range(2):
            await feed(api, producer, transition())

        async def dead() -> list[tuple] | None:
            rows = await api.query(
                "SELECT status, attempts, last_error FROM router.outbox "
                "WHERE kind = 'webhook' ORDER BY id"
            )
            return rows if len(rows) == 2 and all(r[0] == "dead" for r in rows) else None

        rows = await wait_until(dead, "both webhooks dead")
        assert all(attempts == 3 for _, attempts, _ in rows)  # tried, retried, dead
        errors = sorted(error for _, _, error in rows)
        assert errors[0].startswith("webhook target refused: 127.0.0.1 a loopback address")
        assert errors[1].startswith("webhook target refused: localhost resolves to")
        await no_delivery(receiver, within=0.2)


async def _refused_at_registration(api: Api) -> None:
    rep = {"name": "Eve", "email": "eve@example.com"}
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "http://localhost:8080/hook",
        "http://[::1]/hook",
    ):
        refused = await api.call("POST", "/v1/reps", json=rep | {"webhook_url": url}, expect=422)
        [error] = refused.json()["errors"]
        assert (error["path"], error["rule"]) == ("body.webhook_url", "unsafe_target"), url
        assert "webhook target refused" in error["message"]
    ok = await api.call(
        "POST", "/v1/reps", json=rep | {"webhook_url": "http://10.9.1.1/hook"}, expect=201
    )  # on the allowlist
    slack = {"slack_webhook_url": "http://169.254.169.254/"}
    patched = await api.call("PATCH", f"/v1/reps/{ok.json()['id']}", json=slack, expect=422)
    assert [e["path"] for e in patched.json()["errors"]] == ["body.slack_webhook_url"]
    pool = await api.call("POST", "/v1/pools", json={"name": "p"} | slack, expect=422)
    assert [e["path"] for e in pool.json()["errors"]] == ["body.slack_webhook_url"]
    track = {"name": "t", "webhook_url": "http://192.168.1.1/"}
    await api.call("POST", "/v1/nurture-tracks", json=track, expect=422)
    await api.call("DELETE", f"/v1/reps/{ok.json()['id']}", expect=204)
