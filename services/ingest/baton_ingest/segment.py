"""The Segment HTTP Tracking API wire format, as the official SDKs send it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

MessageType = Literal["track", "identify", "page", "screen", "group", "alias"]


class SegmentMessage(BaseModel):
    """One call (track, identify, page, ...). Unknown fields are kept, not rejected
    (SDKs add their own, e.g. ``integrations``, ``channel``)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: MessageType | None = None
    message_id: str | None = Field(default=None, alias="messageId", min_length=1, max_length=256)
    user_id: str | None = Field(default=None, alias="userId", max_length=256)
    anonymous_id: str | None = Field(default=None, alias="anonymousId", max_length=256)
    previous_id: str | None = Field(default=None, alias="previousId", max_length=256)
    group_id: str | None = Field(default=None, alias="groupId", max_length=256)
    event: str | None = Field(default=None, max_length=512)
    name: str | None = Field(default=None, max_length=512)
    category: str | None = Field(default=None, max_length=512)
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    timestamp: AwareDatetime | None = None
    original_timestamp: AwareDatetime | None = Field(default=None, alias="originalTimestamp")
    sent_at: AwareDatetime | None = Field(default=None, alias="sentAt")
    write_key: str | None = Field(default=None, alias="writeKey")

    @field_validator("user_id", "anonymous_id", "previous_id", "group_id", mode="before")
    @classmethod
    def _ids_as_strings(cls, raw: object) -> object:
        # SDKs send numeric user ids as numbers; Segment treats them as strings.
        return _numeric_id_as_string(raw)


def _numeric_id_as_string(raw: object) -> object:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return str(raw)
    return raw


class SegmentBatch(BaseModel):
    """``POST /v1/batch``: messages plus batch-level sentAt/context/writeKey."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    batch: list[dict[str, Any]] = Field(min_length=1, max_length=2500)
    sent_at: AwareDatetime | None = Field(default=None, alias="sentAt")
    context: dict[str, Any] = Field(default_factory=dict)
    write_key: str | None = Field(default=None, alias="writeKey")


@dataclass(frozen=True, slots=True)
class SegmentCall:
    """The fields of one valid message that normalisation reads."""

    type: MessageType | None
    message_id: str | None
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    group_id: str | None
    event: str | None
    name: str | None
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]
    timestamp: datetime | None
    original_timestamp: datetime | None
    sent_at: datetime | None

    @classmethod
    def from_model(cls, msg: SegmentMessage) -> SegmentCall:
        return cls(
            msg.type,
            msg.message_id,
            msg.user_id,
            msg.anonymous_id,
            msg.previous_id,
            msg.group_id,
            msg.event,
            msg.name,
            msg.properties,
            msg.traits,
            msg.context,
            msg.timestamp,
            msg.original_timestamp,
            msg.sent_at,
        )


def parse_message(raw: dict[str, Any]) -> SegmentCall:
    """Validate one message as ``SegmentMessage`` would, raising its ValidationError.

    The shapes SDKs send (ids as strings or numbers, ISO timestamps with an offset,
    objects where objects belong) are checked here directly, several times cheaper
    than model validation; anything else goes through ``SegmentMessage``, so every
    rejection and every unusual but valid input is decided by the model.
    """
    return _fast_call(raw) or SegmentCall.from_model(SegmentMessage.model_validate(raw))


# Field names SegmentMessage also accepts (populate_by_name): left to the model.
_PYTHON_NAMES = frozenset(
    name for name, field in SegmentMessage.model_fields.items() if field.alias not in (None, name)
)
_CALLS = frozenset(get_args(MessageType))
# An ISO 8601 instant as SDKs write it; datetime.fromisoformat and pydantic agree on it.
_ISO_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)


_MISSING = object()


class _Unusual(Exception):
    """Not a shape the fast path decides; SegmentMessage will."""


def _text(raw: dict[str, Any], key: str, max_length: int, min_length: int = 0) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if type(value) is not str or not min_length <= len(value) <= max_length:
        raise _Unusual
    return value


def _id(raw: dict[str, Any], key: str) -> str | None:
    value = _numeric_id_as_string(raw.get(key))
    if value is None:
        return None
    if type(value) is not str or len(value) > 256:
        raise _Unusual
    return value


def _object(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, _MISSING)
    if value is _MISSING:
        return {}
    if type(value) is not dict:
        raise _Unusual
    return value


def _instant(raw: dict[str, Any], key: str) -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    if type(value) is not str or not _ISO_INSTANT.fullmatch(value):
        raise _Unusual
    try:
        return datetime.fromisoformat(value)
    except ValueError:  # e.g. month 13: the model words the error
        raise _Unusual from None


def _fast_call(raw: dict[str, Any]) -> SegmentCall | None:
    if not _PYTHON_NAMES.isdisjoint(raw):
        return None
    kind = raw.get("type")
    if kind is not None and (type(kind) is not str or kind not in _CALLS):
        return None
    try:
        write_key = raw.get("writeKey")
        if write_key is not None and type(write_key) is not str:
            return None
        _text(raw, "category", 512)  # validated, not carried: normalisation has no use for it
        return SegmentCall(
            kind,
            _text(raw, "messageId", 256, min_length=1),
            _id(raw, "userId"),
            _id(raw, "anonymousId"),
            _id(raw, "previousId"),
            _id(raw, "groupId"),
            _text(raw, "event", 512),
            _text(raw, "name", 512),
            _object(raw, "properties"),
            _object(raw, "traits"),
            _object(raw, "context"),
            _instant(raw, "timestamp"),
            _instant(raw, "originalTimestamp"),
            _instant(raw, "sentAt"),
        )
    except _Unusual:
        return None
