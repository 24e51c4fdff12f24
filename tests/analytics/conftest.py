"""Helpers for the analytics tests: LeadEvents, activities and transitions made to order."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from baton_scorer.rules import Rules, load_rules
from baton_shared.schemas import Activity, ActivityKind, EventType, LeadEvent

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

MakeEvent = Callable[..., LeadEvent]
MakeActivity = Callable[..., Activity]


@pytest.fixture(scope="session")
def rules() -> Rules:
    return load_rules()


@pytest.fixture
def make_event() -> MakeEvent:
    """``make_event(lead_id, name=..., type=..., at=..., page_category=..., ...)``."""
    counter = itertools.count()

    def make(
        lead_id: str,
        name: str | None = None,
        *,
        type: EventType | str = EventType.TRACK,
        at: datetime = T0,
        event_id: str | None = None,
        **fields: Any,
    ) -> LeadEvent:
        return LeadEvent(
            event_id=event_id or f"evt-{lead_id}-{next(counter)}",
            lead_id=lead_id,
            type=EventType(type),
            name=name,
            occurred_at=at,
            received_at=at,
            source="test",
            **fields,
        )

    return make


@pytest.fixture
def make_activity() -> MakeActivity:
    counter = itertools.count()

    def make(lead_id: str, kind: str, *, at: datetime = T0, reason: str | None = None) -> Activity:
        return Activity(
            activity_id=f"act-{lead_id}-{next(counter)}",
            lead_id=lead_id,
            rep_id="rep-1",
            kind=ActivityKind(kind),
            reason=reason,
            occurred_at=at,
        )

    return make
