"""The one place the shell reads wall-clock time; the pure core takes ``now`` as input."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
