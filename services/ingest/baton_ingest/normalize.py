"""Segment message → canonical event (a ``LeadEvent`` record). Pure: the caller passes
``received_at``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from baton_ingest.pages import DEFAULT_PAGE_RULES, PageRule, category_for, path_of, utm_from_url
from baton_ingest.records import EventRecord, PageRecord
from baton_ingest.segment import SegmentCall


class InvalidEvent(ValueError):
    """The message is well-formed JSON but breaks a rule; ``path`` names the field."""

    def __init__(self, path: str, rule: str) -> None:
        super().__init__(f"{path}: {rule}")
        self.path = path
        self.rule = rule


def refuse_nul(raw: Any, encoded: bytes | None = None) -> None:
    """Refuse an event with a NUL character in any key or string (``\\u0000`` in JSON):
    the services downstream keep events in PostgreSQL, which cannot store one. Raises
    InvalidEvent naming the first field path. ``encoded`` (the JSON, when at hand)
    makes the usual case one substring search."""
    if encoded is not None and b"\\u0000" not in encoded:
        return
    path = _nul_path(raw, "")
    if path is not None:
        raise InvalidEvent(path or "body", NUL_RULE)


NUL_RULE = "must not contain a NUL character (\\u0000)"


class SharedFields:
    """The batch-level fields (``context``, ``sentAt``) each message of a batch inherits
    unless it sends its own. They count towards each message's size limit and NUL check
    as if the message had sent them, so a large shared context cannot multiply into
    oversized events; they are measured once per batch and charged per message."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        # Inside the message's object a field adds ``,"key":value``: its own object's
        # bytes, less the two braces, plus a comma.
        self._bytes = {key: len(orjson.dumps({key: value})) - 1 for key, value in fields.items()}
        self._nul = {key: _nul_path(value, key) for key, value in fields.items()}

    def merged(self, raw: dict[str, Any], raw_bytes: int, limit: int) -> dict[str, Any]:
        """``raw`` with the fields it inherits; InvalidEvent when that is over ``limit``
        bytes (path ``""``: the whole event) or an inherited field holds a NUL."""
        inherited = [key for key in self.fields if key not in raw]
        if raw_bytes + sum(self._bytes[key] for key in inherited) > limit:
            shared = f" with the batch's {' and '.join(inherited)}" if inherited else ""
            raise InvalidEvent("", f"event larger than {limit} bytes{shared}")
        for key in inherited:
            path = self._nul[key]
            if path is not None:
                raise InvalidEvent(path, f"{NUL_RULE} (the batch's {key})")
        return {**{key: self.fields[key] for key in inherited}, **raw}


def _nul_path(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return here
            found = _nul_path(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_path(item, f"{path}.{i}" if path else str(i))
            if found is not None:
                return found
    return None


def event_time(msg: SegmentCall, received_at: datetime) -> datetime:
    """Segment's clock-skew rule: trust ``timestamp``; else shift ``originalTimestamp``
    by the difference between the server's receive time and the client's ``sentAt``."""
    if msg.timestamp is not None:
        return msg.timestamp
    if msg.original_timestamp is not None and msg.sent_at is not None:
        return received_at - (msg.sent_at - msg.original_timestamp)
    if msg.original_timestamp is not None:
        return msg.original_timestamp
    return received_at


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def page_info(msg: SegmentCall) -> PageRecord | None:
    """The page, from page-call properties first, then ``context.page``."""
    ctx_page = msg.context.get("page")
    ctx_page = ctx_page if isinstance(ctx_page, dict) else {}
    props = msg.properties if msg.type in ("page", "screen") else {}
    url = _str(props.get("url")) or _str(ctx_page.get("url"))
    path = _str(props.get("path")) or _str(ctx_page.get("path")) or path_of(url)
    referrer = _str(props.get("referrer")) or _str(ctx_page.get("referrer"))
    title = _str(props.get("title")) or _str(ctx_page.get("title"))
    if not (url or path or referrer or title):
        return None
    return {"url": url, "path": path, "referrer": referrer, "title": title}


def campaign_of(msg: SegmentCall, page: PageRecord | None) -> dict[str, str]:
    """``context.campaign`` (as the SDKs send it), else UTM parameters in the page URL."""
    raw = msg.context.get("campaign")
    if isinstance(raw, dict) and raw:
        return {k: str(v) for k, v in raw.items() if isinstance(v, str | int | float)}
    return utm_from_url(page["url"] if page else None)


def email_of(msg: SegmentCall) -> str | None:
    ctx_traits = msg.context.get("traits")
    ctx_traits = ctx_traits if isinstance(ctx_traits, dict) else {}
    # A group call's traits are the company's: its email is not the person's.
    own = msg.traits if msg.type != "group" else {}
    email = own.get("email") or ctx_traits.get("email") or msg.properties.get("email")
    if isinstance(email, str) and "@" in email:
        return email.strip().lower()
    return None


def traits_of(msg: SegmentCall) -> dict[str, Any]:
    """Top-level traits (Segment) merged over ``context.traits`` (where RudderStack's
    SDKs put identify traits). A group call's traits describe the company: they become
    the lead's ``company`` trait (Segment's reserved object), with the group id as its
    ``id`` — what links the lead to its account (``baton_shared.accounts``)."""
    ctx_traits = msg.context.get("traits")
    person = ctx_traits if isinstance(ctx_traits, dict) else {}
    if msg.type == "group":
        return {**person, "company": {**msg.traits, "id": msg.group_id}}
    return {**person, **msg.traits}


def normalize(
    msg: SegmentCall,
    *,
    received_at: datetime,
    source: str,
    max_future: timedelta,
    page_rules: tuple[PageRule, ...] = DEFAULT_PAGE_RULES,
) -> EventRecord:
    """Validate the rules Segment applies and build the canonical event."""
    if msg.type is None:
        raise InvalidEvent("type", "required: one of track, identify, page, screen, group, alias")
    if not msg.message_id:
        raise InvalidEvent("messageId", "required: a unique id per message")
    if not msg.user_id and not msg.anonymous_id:
        raise InvalidEvent("userId", "userId or anonymousId is required")
    if msg.type == "track" and not msg.event:
        raise InvalidEvent("event", "required for a track call")
    if msg.type == "group" and not msg.group_id:
        raise InvalidEvent("groupId", "required for a group call")
    if msg.type == "alias" and not msg.previous_id:
        raise InvalidEvent("previousId", "required for an alias call")
    try:
        occurred_at = event_time(msg, received_at)
    except OverflowError:
        raise InvalidEvent(
            "originalTimestamp", "sentAt and originalTimestamp are too far apart to correct"
        ) from None
    if occurred_at - received_at > max_future:
        raise InvalidEvent("timestamp", f"more than {max_future} in the future")
    email = email_of(msg)
    lead_id = msg.user_id or email or msg.anonymous_id
    assert lead_id is not None
    page = page_info(msg)
    return {
        "schema": 1,
        "event_id": msg.message_id,
        "lead_id": lead_id,
        "user_id": msg.user_id,
        "anonymous_id": msg.anonymous_id,
        "email": email,
        "type": msg.type,
        "name": msg.event if msg.type == "track" else msg.name,
        "occurred_at": occurred_at,
        "received_at": received_at,
        "source": source,
        "page_category": category_for(page["path"] if page else None, page_rules),
        "page": page,
        "campaign": campaign_of(msg, page),
        "user_agent": _str(msg.context.get("userAgent")),
        "ip": _str(msg.context.get("ip")),
        "group_id": msg.group_id,
        "previous_id": msg.previous_id,
        "possible_duplicate": False,
        "properties": msg.properties,
        "traits": traits_of(msg),
        "context": msg.context,
        "sealed": None,  # privacy mode: baton_ingest.sealing seals and pseudonymises
        "email_id": None,
    }


def source_of(raw: dict[str, Any]) -> str:
    """RudderStack's SDKs add ``channel``; both name their library ``analytics-*``."""
    library = (
        raw.get("context", {}).get("library", {}) if isinstance(raw.get("context"), dict) else {}
    )
    name = str(library.get("name", "")) if isinstance(library, dict) else ""
    if "rudder" in name.lower() or "channel" in raw:
        return "rudderstack"
    return "segment"
