"""Email engagement: Baton's generic schema and SendGrid's Event Webhook → LeadEvent. Pure.

Every email event becomes a ``track`` event named from the shared vocabulary
(``baton_shared.email_events``: ``Email Opened``, ``Email Clicked``, ``Unsubscribed``,
...), the names the scoring rules score, keyed by the recipient's email address.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, ValidationError

from baton_ingest.normalize import InvalidEvent
from baton_ingest.pages import utm_from_url
from baton_shared.email_events import BY_EMAIL_TYPE
from baton_shared.schemas import EventType, LeadEvent, PageInfo

# The generic schema's types: the keys of ``BY_EMAIL_TYPE`` (a test keeps them equal).
EmailEventType = Literal[
    "processed",
    "delivered",
    "deferred",
    "bounce",
    "dropped",
    "open",
    "click",
    "reply",
    "spam_report",
    "unsubscribe",
    "resubscribe",
]

# SendGrid Event Webhook event → generic type.
SENDGRID_TYPES: dict[str, str] = {
    "processed": "processed",
    "delivered": "delivered",
    "deferred": "deferred",
    "bounce": "bounce",
    "dropped": "dropped",
    "open": "open",
    "click": "click",
    "spamreport": "spam_report",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
    "group_resubscribe": "resubscribe",
}


class EmailEvent(BaseModel):
    """One engagement event in Baton's generic email schema."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=256, description="Provider event id; the dedup key")
    email: EmailStr
    type: EmailEventType
    timestamp: AwareDatetime
    url: str | None = Field(default=None, max_length=4096, description="The clicked link")
    campaign: str | None = Field(default=None, max_length=512)
    message_id: str | None = Field(default=None, max_length=256)
    properties: dict[str, Any] = Field(default_factory=dict)


class EmailEvents(BaseModel):
    """``POST /v1/email/events``."""

    model_config = ConfigDict(extra="forbid")

    events: list[EmailEvent] = Field(min_length=1, max_length=1000)


def _checked(occurred_at: datetime, received_at: datetime, max_future: timedelta) -> datetime:
    if occurred_at - received_at > max_future:
        raise InvalidEvent("timestamp", f"more than {max_future} in the future")
    return occurred_at


def from_generic(
    event: EmailEvent, *, received_at: datetime, max_future: timedelta, source: str = "email"
) -> LeadEvent:
    email = event.email.lower()
    props = {**event.properties, "email_type": event.type}
    if event.campaign:
        props["campaign"] = event.campaign
    if event.message_id:
        props["message_id"] = event.message_id
    if event.url:
        props["url"] = event.url
    return LeadEvent(
        event_id=event.id,
        lead_id=email,
        email=email,
        type=EventType.TRACK,
        name=BY_EMAIL_TYPE[event.type].value,
        occurred_at=_checked(event.timestamp, received_at, max_future),
        received_at=received_at,
        source=source,
        page=PageInfo(url=event.url) if event.url else None,
        campaign=utm_from_url(event.url),
        properties=props,
    )


def from_sendgrid(raw: Any, *, received_at: datetime, max_future: timedelta) -> LeadEvent:
    """One element of SendGrid's Event Webhook array."""
    if not isinstance(raw, dict):
        raise InvalidEvent("", "must be a JSON object")
    kind = raw.get("event")
    if not isinstance(kind, str) or kind not in SENDGRID_TYPES:
        raise InvalidEvent("event", f"unknown SendGrid event {kind!r}")
    event_id = raw.get("sg_event_id")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidEvent("sg_event_id", "required: SendGrid's event id")
    timestamp = raw.get("timestamp")
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        raise InvalidEvent("timestamp", "required: Unix seconds")
    try:
        occurred_at = datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidEvent("timestamp", "out of range for Unix seconds") from None
    known = {"email", "event", "sg_event_id", "timestamp", "url", "sg_message_id", "category"}
    extra = {k: v for k, v in raw.items() if k not in known}
    try:
        generic = EmailEvent(
            id=event_id,
            email=raw.get("email"),  # type: ignore[arg-type]
            type=SENDGRID_TYPES[kind],  # type: ignore[arg-type]
            timestamp=occurred_at,
            url=raw.get("url") if isinstance(raw.get("url"), str) else None,
            message_id=raw.get("sg_message_id")
            if isinstance(raw.get("sg_message_id"), str)
            else None,
            properties={**extra, "sendgrid_event": kind},
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidEvent(".".join(str(p) for p in first["loc"]), first["msg"]) from None
    return from_generic(generic, received_at=received_at, max_future=max_future, source="sendgrid")
