"""The Segment HTTP Tracking API wire format, as the official SDKs send it.

``SegmentMessage`` and ``SegmentBatch`` define what is valid (and the OpenAPI schema).
``parse_message`` and ``parse_batch`` are how requests are read: they decide exactly as
the models do, checking the usual shapes directly because they run for every event.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, NamedTuple, cast, get_args

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


class SegmentCall(NamedTuple):
    """The fields of one valid message that normalisation reads. (A named tuple: it is
    made for every event, and is cheaper to make than a frozen dataclass.)"""

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
    objects where objects belong) are checked here directly, which costs less than
    model validation; anything else goes through ``SegmentMessage``, so every rejection
    and every unusual but valid input is decided by the model.
    """
    return _fast_call(raw) or SegmentCall.from_model(SegmentMessage.model_validate(raw))


def _python_names(model: type[BaseModel]) -> frozenset[str]:
    """Field names a model also accepts besides their aliases (populate_by_name): inputs
    using them are left to the model."""
    return frozenset(
        name for name, field in model.model_fields.items() if field.alias not in (None, name)
    )


_PYTHON_NAMES = _python_names(SegmentMessage)
_CALLS = frozenset(get_args(MessageType))
# An ISO 8601 instant as SDKs write it; datetime.fromisoformat and pydantic agree on it.
_ISO_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)


def _text(value: object, max_length: int) -> bool:
    return value is None or (type(value) is str and len(value) <= max_length)


def _id(value: object) -> str | None:
    """``SegmentMessage``'s id rule for the common cases; anything else raises _Unusual."""
    if type(value) is str:
        if len(value) <= 256:
            return value
    elif value is None:
        return None
    elif type(value) is int or type(value) is float:
        return _id(str(value))
    raise _Unusual


def _instant(value: object) -> datetime | None:
    if value is None:
        return None
    if type(value) is str and _ISO_INSTANT.fullmatch(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:  # e.g. month 13: the model words the error
            pass
    raise _Unusual


class _Unusual(Exception):
    """Not a shape the fast path decides; SegmentMessage will."""


def _fast_call(raw: dict[str, Any]) -> SegmentCall | None:
    """The common shapes, checked inline (this runs for every event)."""
    if not _PYTHON_NAMES.isdisjoint(raw):
        return None
    get = raw.get
    kind, message_id = get("type"), get("messageId")
    properties, traits, context = (
        get("properties", _NO_DICT),
        get("traits", _NO_DICT),
        get("context", _NO_DICT),
    )
    event, name, write_key = get("event"), get("name"), get("writeKey")
    if not (
        (kind is None or (type(kind) is str and kind in _CALLS))
        and ((type(message_id) is str and 0 < len(message_id) <= 256) or message_id is None)
        and type(properties) is dict
        and type(traits) is dict
        and type(context) is dict
        and _text(event, 512)
        and _text(name, 512)
        and _text(get("category"), 512)  # validated, not carried: normalisation has no use
        and (write_key is None or type(write_key) is str)
    ):
        return None
    try:
        return SegmentCall(
            cast(MessageType | None, kind),  # one of _CALLS or None: checked above
            message_id,
            _id(get("userId")),
            _id(get("anonymousId")),
            _id(get("previousId")),
            _id(get("groupId")),
            event,
            name,
            {} if properties is _NO_DICT else properties,
            {} if traits is _NO_DICT else traits,
            {} if context is _NO_DICT else context,
            _instant(get("timestamp")),
            _instant(get("originalTimestamp")),
            _instant(get("sentAt")),
        )
    except _Unusual:
        return None


# Stands in for an absent object field: a dict, so one type check covers both cases.
_NO_DICT: dict[str, Any] = {}


class BatchEnvelope(NamedTuple):
    """What ``/v1/batch`` reads of a valid batch: its messages and batch-level context."""

    batch: list[dict[str, Any]]
    context: dict[str, Any]


_BATCH_PYTHON_NAMES = _python_names(SegmentBatch)


def parse_batch(body: dict[str, Any]) -> BatchEnvelope:
    """Validate a batch as ``SegmentBatch`` would, raising its ValidationError; the usual
    shape is checked directly (the model would copy every message)."""
    batch, context = body.get("batch"), body.get("context", _NO_DICT)
    write_key = body.get("writeKey")
    if (
        type(batch) is list
        and 1 <= len(batch) <= 2500
        and all(type(message) is dict for message in batch)
        and type(context) is dict
        and (write_key is None or type(write_key) is str)
        and _BATCH_PYTHON_NAMES.isdisjoint(body)
    ):
        try:
            _instant(body.get("sentAt"))
        except _Unusual:
            pass
        else:
            return BatchEnvelope(batch, {} if context is _NO_DICT else context)
    envelope = SegmentBatch.model_validate(body)
    return BatchEnvelope(envelope.batch, envelope.context)
