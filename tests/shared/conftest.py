"""Helpers for the shared-library unit tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No Baton, Kafka or database settings inherited from the machine running the tests."""
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith("BATON_") or upper in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
            monkeypatch.delenv(name)
    return monkeypatch
