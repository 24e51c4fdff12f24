"""What one event is worth: engagement points and fit points. Pure."""

from __future__ import annotations

from typing import Any

from baton_scorer.rules import Rules
from baton_shared.schemas import EventType, LeadEvent


def engagement_points(event: LeadEvent, rules: Rules) -> float:
    """Points for a track event by name, or for a page view by page category."""
    if event.type == EventType.TRACK and event.name:
        return rules.engagement.events.get(event.name, 0.0)
    if event.type in (EventType.PAGE, EventType.SCREEN) and event.page_category:
        return rules.engagement.pages.get(event.page_category, 0.0)
    return 0.0


def fit_points(traits: dict[str, Any], email: str | None, rules: Rules) -> float:
    """Points from who the lead is. Fit does not decay."""
    total = 0.0
    title = traits.get("title")
    if isinstance(title, str):
        for pattern, points in rules.title_patterns:
            if pattern.search(title):
                total += points
                break
    if email and "@" in email:
        domain = email.rsplit("@", 1)[1]
        if domain in rules.fit.email_domains.free_mail:
            total += rules.fit.email_domains.free_mail_points
    return total


def is_express(event: LeadEvent, rules: Rules) -> bool:
    """A track event on an express lane makes the lead SQL at once."""
    return event.type == EventType.TRACK and event.name in rules.express_lanes
