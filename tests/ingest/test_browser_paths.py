"""What analytics.js sends, as it sends it: one-letter paths, text/plain bodies carrying
the writeKey, preflights from the site's origin, sendBeacon; and messages without a
messageId, which ingest gives an id of its own."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from tests.ingest.test_ingest_api import KEY, client_for, settings_for
from tests.support.kafka import read_all, wait_for_record

pytestmark = pytest.mark.integration

SITE = "https://www.acme.example"
# Exactly what analytics-next's fetch dispatcher sends (shared-dispatcher.createHeaders).
ANALYTICS_JS_HEADERS = {
    "Content-Type": "text/plain",
    "Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode(),
    "Origin": SITE,
}


@pytest.fixture
def prefix(unique_name: str) -> str:
    return f"{unique_name}."


@pytest.fixture
async def ingest(kafka_bootstrap: str, prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest allowing exactly the site's origin (not ``*``)."""
    settings = settings_for(kafka_bootstrap, prefix, BATON_INGEST_CORS_ORIGINS=SITE)
    async for client in client_for(settings):
        yield client


def text_body(message: dict[str, Any]) -> bytes:
    return orjson.dumps({"writeKey": KEY, "anonymousId": "anon-js", **message})


async def test_every_one_letter_path_stores_its_call(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    calls = {
        "t": {"type": "track", "event": "Demo Requested", "messageId": "js-t"},
        "i": {"type": "identify", "userId": "u-js", "messageId": "js-i"},
        "p": {"type": "page", "properties": {"path": "/pricing"}, "messageId": "js-p"},
        "s": {"type": "screen", "name": "Home", "messageId": "js-s"},
        "g": {"type": "group", "groupId": "acme", "messageId": "js-g"},
        "a": {"type": "alias", "userId": "u-js", "previousId": "anon-js", "messageId": "js-a"},
    }
    for short, message in calls.items():
        response = await ingest.post(
            f"/v1/{short}", content=text_body(message), headers=ANALYTICS_JS_HEADERS
        )
        assert response.status_code == 200, (short, response.text)
        assert response.headers["access-control-allow-origin"] == SITE

    events = await read_all(kafka_bootstrap, f"{prefix}leads.events")
    types = {e["event_id"]: e["type"] for e in events}
    assert types == {m["messageId"]: m["type"] for m in calls.values()}
    page = next(e for e in events if e["event_id"] == "js-p")
    assert page["page_category"] == "pricing"


async def test_the_batching_path_takes_what_the_batched_dispatcher_posts(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    # batched-dispatcher.ts: writeKey, the events without their sentAt, one batch sentAt.
    body = {
        "writeKey": KEY,
        "sentAt": "2026-03-01T10:00:05.000Z",
        "batch": [
            {"type": "page", "anonymousId": "anon-b", "messageId": "jb-1", "writeKey": KEY},
            {"type": "track", "anonymousId": "anon-b", "event": "Signed Up", "messageId": "jb-2"},
            {"type": "track", "anonymousId": "anon-b", "messageId": "jb-3"},
        ],
    }
    response = await ingest.post("/v1/b", content=orjson.dumps(body), headers=ANALYTICS_JS_HEADERS)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "success": True,
        "accepted": 2,
        "rejected": [{"index": 2, "path": "batch.2.event", "message": "required for a track call"}],
    }
    events = await read_all(kafka_bootstrap, f"{prefix}leads.events")
    assert sorted(e["event_id"] for e in events) == ["jb-1", "jb-2"]


@pytest.mark.parametrize(
    ("long", "short", "content", "headers", "status"),
    [
        ("track", "t", b'{"writeKey": "%s", "userId": "u"}' % KEY.encode(), {}, 400),
        ("track", "t", b'{"writeKey": "nope", "userId": "u", "event": "e"}', {}, 401),
        ("page", "p", b'{"writeKey": "%s", "userId": "u"' % KEY.encode(), {}, 400),
        ("identify", "i", b"x" * (33 * 1024), {}, 413),
        ("identify", "i", b"{}", {"Content-Type": "application/xml"}, 415),
        ("batch", "b", b'{"writeKey": "%s", "batch": []}' % KEY.encode(), {}, 400),
        ("batch", "b", b'{"batch": [{"type": "page", "userId": "u"}]}', {}, 401),
    ],
    ids=["invalid-event", "unknown-key", "bad-json", "too-large", "not-json", "empty", "no-key"],
)
async def test_one_letter_paths_refuse_exactly_as_their_long_paths(
    ingest: httpx.AsyncClient,
    long: str,
    short: str,
    content: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    sent = {"Content-Type": "text/plain", **headers}
    by_long = await ingest.post(f"/v1/{long}", content=content, headers=sent)
    by_short = await ingest.post(f"/v1/{short}", content=content, headers=sent)
    assert by_long.status_code == by_short.status_code == status
    assert by_short.json() == by_long.json()
    assert set(by_short.json()) >= {"code", "message"}


async def preflight(
    ingest: httpx.AsyncClient, path: str, origin: str, request_headers: str
) -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": request_headers,
    }
    return await ingest.options(path, headers=headers)


async def test_a_preflight_from_the_site_is_allowed_and_from_elsewhere_refused(
    ingest: httpx.AsyncClient,
) -> None:
    # A retry adds X-Retry-Count, which the browser must be allowed to send too.
    request_headers = "authorization,content-type,x-retry-count"
    for path in ("/v1/t", "/v1/b", "/v1/track"):
        answer = await preflight(ingest, path, SITE, request_headers)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["access-control-allow-origin"] == SITE
        allowed = answer.headers["access-control-allow-headers"].lower()
        assert all(h in allowed for h in request_headers.split(","))

    elsewhere = await preflight(ingest, "/v1/t", "https://evil.example", request_headers)
    assert elsewhere.status_code == 400
    assert "access-control-allow-origin" not in elsewhere.headers


async def test_a_beacon_without_headers_lands_on_a_one_letter_path(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    """navigator.sendBeacon(url, string): text/plain, no Authorization, no preflight."""
    response = await ingest.post(
        "/v1/t",
        content=text_body({"event": "Tab Closed", "messageId": "beacon-t"}),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": SITE},
    )
    assert response.status_code == 200, response.text
    events = await wait_for_record(
        kafka_bootstrap, f"{prefix}leads.events", lambda r: r["event_id"] == "beacon-t"
    )
    assert events[-1]["name"] == "Tab Closed"


async def test_the_library_telemetry_is_answered_and_dropped(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    """analytics.js posts its own counters to ``<apiHost>/m`` every 30 s unless told not to."""
    series = {"series": [{"type": "Counter", "metric": "analytics_js.invoke", "value": 1}]}
    response = await ingest.post(
        "/v1/m", content=orjson.dumps(series), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200
    assert await read_all(kafka_bootstrap, f"{prefix}leads.events") == []


async def test_a_message_without_message_id_is_stored_under_a_generated_id(
    ingest: httpx.AsyncClient, kafka_bootstrap: str, prefix: str
) -> None:
    """As Segment's HTTP API: accepted, with an id of ingest's; sending it twice makes two
    events, since nothing ties the retry to the first attempt."""
    track = {"userId": "u-raw", "event": "Demo Requested"}
    for _ in range(2):
        long = await ingest.post("/v1/track", auth=(KEY, ""), json=track)
        assert long.status_code == 200, long.text
    short = await ingest.post("/v1/t", content=text_body(track), headers=ANALYTICS_JS_HEADERS)
    assert short.status_code == 200, short.text
    batch = await ingest.post(
        "/v1/batch",
        auth=(KEY, ""),
        json={"batch": [{"type": "identify", "userId": "u-raw", "messageId": None}]},
    )
    assert batch.json() == {"success": True, "accepted": 1, "rejected": []}

    events = await read_all(kafka_bootstrap, f"{prefix}leads.events")
    assert len(events) == 4
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == 4
    assert all(i.startswith("ingest-") for i in ids)
    assert not any(e["possible_duplicate"] for e in events)


async def test_an_empty_message_id_is_still_refused(ingest: httpx.AsyncClient) -> None:
    response = await ingest.post(
        "/v1/track", auth=(KEY, ""), json={"userId": "u", "event": "e", "messageId": ""}
    )
    assert response.status_code == 400
    assert response.json()["path"] == "messageId"
