"""Deterministic ids: the same inputs give the same id, so re-emission is harmless."""

from __future__ import annotations

import hashlib


def stable_id(*parts: str) -> str:
    """A short, deterministic id derived from ``parts`` (sha256, 32 hex chars)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return digest[:32]
