"""Pieces of webhook delivery that need no network: Retry-After parsing, endpoint keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from baton_router.dispatcher import retry_after_seconds
from baton_router.store import endpoint_key

NOW = datetime(2025, 3, 3, 12, 0, 0, tzinfo=UTC)


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("120", NOW) == 120.0
    assert retry_after_seconds("Mon, 03 Mar 2025 12:05:00 GMT", NOW) == 300.0
    assert retry_after_seconds("Mon, 03 Mar 2025 11:00:00 GMT", NOW) == 0.0  # in the past
    assert retry_after_seconds("-5", NOW) == 0.0


def test_unusable_retry_after_is_ignored() -> None:
    assert retry_after_seconds(None, NOW) is None
    assert retry_after_seconds("soon", NOW) is None


def test_concurrency_is_limited_per_rep_or_track_not_for_kafka() -> None:
    rep, track = uuid.UUID(int=1), uuid.UUID(int=2)
    assert endpoint_key("webhook", rep, None) == f"rep:{rep}"
    assert endpoint_key("webhook", None, track) == f"track:{track}"
    assert endpoint_key("kafka", None, None) == "kafka"
