"""Prometheus exposition shared by the HTTP services."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


def exposition() -> tuple[bytes, str]:
    """The current metrics in the text format, with its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
