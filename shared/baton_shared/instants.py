"""An instant as Baton's APIs take it: ISO 8601 text with a time zone.

pydantic alone would also read a number (``0.5``) as a Unix time; an API documented as
``format: date-time`` refuses it, naming the field (and refuses a naive date-time). A
``datetime`` passes as it is (a YAML file's unquoted timestamps arrive as one).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, WithJsonSchema

ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_only(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not ISO_START.match(value):
        raise ValueError("give an ISO 8601 date-time with a time zone, e.g. 2026-01-31T09:00:00Z")
    return value


Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_only),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def outside_skew(
    value: datetime, now: datetime, ahead: timedelta, behind: timedelta | None = None
) -> str | None:
    """Why a caller's instant is not within ``now - behind`` .. ``now + ahead`` (no past
    bound when ``behind`` is None), or None when it is. Pure: the caller passes ``now``."""
    if value - now > ahead:
        return f"more than {ahead} in the future"
    if behind is not None and now - value > behind:
        return f"more than {behind} in the past"
    return None
