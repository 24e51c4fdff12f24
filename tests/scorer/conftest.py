"""Helpers for the scorer's pure unit tests: the shipped rules and a LeadEvent factory."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from baton_scorer.rules import Rules, load_rules
from baton_shared.schemas import EventType, LeadEvent

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

MakeEvent = Callable[..., LeadEvent]


@pytest.fixture(scope="session")
def rules() -> Rules:
    return load_rules()


@pytest.fixture(scope="session")
def make_event() -> MakeEvent:
    """``make_event(type, name=..., page_category=..., at=..., event_id=..., ...)``."""
    counter = itertools.count()

    def make(
        type: EventType | str = EventType.TRACK,
        *,
        at: datetime = T0,
        event_id: str | None = None,
        lead_id: str = "lead-1",
        **fields: Any,
    ) -> LeadEvent:
        return LeadEvent(
            event_id=event_id or f"evt-{next(counter)}",
            lead_id=lead_id,
            type=EventType(type),
            occurred_at=at,
            received_at=at,
            source="test",
            **fields,
        )

    return make
