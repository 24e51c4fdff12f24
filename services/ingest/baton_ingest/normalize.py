"""Segment message → canonical LeadEvent. Pure: the caller passes ``received_at``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from baton_ingest.segment import SegmentMessage
from baton_shared.schemas import EventType, LeadEvent


class InvalidEvent(ValueError):
    """The message is well-formed JSON but breaks a rule; ``path`` names the field."""

    def __init__(self, path: str, rule: str) -> None:
        super().__init__(f"{path}: {rule}")
        self.path = path
        self.rule = rule


@dataclass(frozen=True)
class PageRule:
    """A URL path prefix and the page category it maps to."""

    prefix: str
    category: str


DEFAULT_PAGE_RULES = (
    PageRule("/pricing", "pricing"),
    PageRule("/demo", "demo"),
    PageRule("/careers", "careers"),
    PageRule("/docs", "docs"),
    PageRule("/blog", "blog"),
    PageRule("/product", "product"),
)


def event_time(msg: SegmentMessage, received_at: datetime) -> datetime:
    """Segment's clock-skew rule: trust ``timestamp``; else shift ``originalTimestamp``
    by the difference between the server's receive time and the client's ``sentAt``."""
    if msg.timestamp is not None:
        return msg.timestamp
    if msg.original_timestamp is not None and msg.sent_at is not None:
        return received_at - (msg.sent_at - msg.original_timestamp)
    if msg.original_timestamp is not None:
        return msg.original_timestamp
    return received_at


def page_category(
    context: dict[str, Any],
    properties: dict[str, Any],
    rules: tuple[PageRule, ...] = DEFAULT_PAGE_RULES,
) -> str | None:
    """The category of the page the event happened on, from its URL path."""
    path = properties.get("path") or (context.get("page") or {}).get("path")
    if not isinstance(path, str):
        return None
    for rule in rules:
        if (
            path == rule.prefix
            or path.startswith(rule.prefix + "/")
            or path.startswith(rule.prefix + "?")
        ):
            return rule.category
    return None


def normalize(
    msg: SegmentMessage,
    *,
    received_at: datetime,
    source: str,
    max_future: timedelta,
) -> LeadEvent:
    """Validate the rules Segment applies and build the canonical event."""
    if msg.type is None:
        raise InvalidEvent("type", "required: one of track, identify, page, screen, group, alias")
    if not msg.message_id:
        raise InvalidEvent("messageId", "required: a unique id per message")
    if not msg.user_id and not msg.anonymous_id:
        raise InvalidEvent("userId", "userId or anonymousId is required")
    if msg.type == "track" and not msg.event:
        raise InvalidEvent("event", "required for a track call")
    occurred_at = event_time(msg, received_at)
    if occurred_at - received_at > max_future:
        raise InvalidEvent("timestamp", f"more than {max_future} in the future")
    email = msg.traits.get("email") or (msg.context.get("traits") or {}).get("email")
    email = email.strip().lower() if isinstance(email, str) and email.strip() else None
    lead_id = msg.user_id or email or msg.anonymous_id
    assert lead_id is not None
    return LeadEvent(
        event_id=msg.message_id,
        lead_id=lead_id,
        user_id=msg.user_id,
        anonymous_id=msg.anonymous_id,
        email=email,
        type=EventType(msg.type),
        name=msg.event if msg.type == "track" else msg.name,
        occurred_at=occurred_at,
        received_at=received_at,
        source=source,
        page_category=page_category(msg.context, msg.properties),
        properties=msg.properties,
        traits=msg.traits,
        context=msg.context,
    )
