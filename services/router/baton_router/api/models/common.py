"""What every request body shares: unknown fields are refused, and a field that may be
left out is not thereby nullable."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omittable(**constraints: Any) -> Any:
    """A field a PATCH may leave out but may not set to null: typed without ``None``,
    defaulting to None only when absent (``exclude_unset`` drops it)."""
    return Field(default=None, json_schema_extra=_no_default, **constraints)
