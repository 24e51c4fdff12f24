"""The Segment HTTP Tracking API wire format, as the official SDKs send it."""

from __future__ import annotations

from typing import Any, Literal

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
