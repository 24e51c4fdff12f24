"""Reading ``leads.sla`` in tests."""

from __future__ import annotations

from collections.abc import Callable, Set
from typing import Any


def every_clock(status: str, clock_ids: Set[str]) -> Callable[[dict[str, Any]], bool]:
    """A :func:`tests.support.kafka.wait_for_record` match: true once each of
    ``clock_ids`` has had a ``status`` event."""
    seen: set[str] = set()

    def match(record: dict[str, Any]) -> bool:
        if record["status"] == status:
            seen.add(record["clock_id"])
        return seen >= clock_ids

    return match
