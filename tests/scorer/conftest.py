"""Helpers for the scorer's pure unit tests: the shipped rules and a LeadEvent factory."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from baton_scorer.rules import Rules, load_rules, parse_rules
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


@pytest.fixture(scope="session")
def trial_rule_changes(make_event: MakeEvent) -> tuple[list[Rules], list[LeadEvent]]:
    """A rules change without a restart: the rule ``trial-page`` is first-time-only for
    the first of three daily visits, then capped at 40 points a day. Returns the rules
    each visit is scored with, and the visits."""
    text = """
name: {name}
engagement:
  rules:
    - id: trial-page
      match: {{type: page, url: "*/trial*"}}
      points: 30
      {how}
"""
    before = parse_rules(text.format(name="v1", how="first_time_only: true"))
    after = parse_rules(text.format(name="v2", how="cap: {points: 40, window_hours: 24}"))
    visits = [
        make_event("page", at=T0 + timedelta(days=i), properties={"url": "https://a.example/trial"})
        for i in range(3)
    ]
    return [before, after, after], visits
