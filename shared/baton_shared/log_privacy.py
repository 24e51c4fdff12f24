"""What a log line may not carry: personal data.

Two structlog processors that every log line passes through (Baton's own and the
stdlib's: uvicorn, aiokafka, SQLAlchemy), after exceptions are formatted:

* :class:`Pseudonymise` replaces the value of each key that names a person
  (``lead_id``, ``email``, ``ip``, ...: :data:`PERSONAL_KEYS`) with a keyed hash, so
  one lead's lines can be followed (and found again, :func:`lead_hash`) without the
  line saying who the lead is;
* :func:`scrub` removes what a free text (an error message, a traceback) can carry:
  email addresses, and the bound values a database error quotes (``DETAIL:`` lines,
  SQLAlchemy's ``[parameters: ...]``).

:func:`scrub_stdlib_records` does the same to every stdlib log record as it is made, so
the text stays clean whatever handler writes it (faust's worker installs its own).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

#: Keys whose value is, or may be, a person's identity.
PERSONAL_KEYS = frozenset(
    {
        "lead_id",
        "user_id",
        "anonymous_id",
        "previous_id",
        "survivor_id",
        "merged_into",
        "email",
        "rep_email",
        "ip",
        "client",
        "user_agent",
    }
)
HASH_PREFIX = "h:"
HASH_HEX_CHARS = 16

_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
_DETAIL = re.compile(r"(DETAIL|HINT):[^\n]*")
_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\n|$|\s*\(Background)", re.DOTALL)


def lead_hash(key: bytes, value: object) -> str:
    """How logs name ``value`` (a lead id, an email, ...): HMAC-SHA256 under ``key``,
    its first 16 hex digits, prefixed ``h:``."""
    digest = hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()
    return HASH_PREFIX + digest[:HASH_HEX_CHARS]


class Pseudonymise:
    """The structlog processor hashing :data:`PERSONAL_KEYS` with ``key``."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, _: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        for name in PERSONAL_KEYS & event.keys():
            value = event[name]
            if value is not None and not str(value).startswith(HASH_PREFIX):
                event[name] = lead_hash(self._key, value)
        return event


def scrub_text(text: str) -> str:
    """``text`` without email addresses and quoted database values."""
    if "@" in text or "%40" in text:
        text = _EMAIL.sub("[email]", text)
    if ":" in text:
        text = _DETAIL.sub(r"\1: [redacted]", text)
        text = _PARAMETERS.sub("[parameters redacted]", text)
    return text


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, list | tuple):
        return [_scrubbed(item) for item in value]
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    return value


def scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """The structlog processor applying :func:`scrub_text` to every value."""
    for name, value in event.items():
        event[name] = _scrubbed(value)
    return event


class _ScrubbingFactory:
    """A log record factory scrubbing the message and the exception text it makes."""

    def __init__(self, make: Callable[..., logging.LogRecord]) -> None:
        self.make = make

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: logging reports it when it formats
            return record
        clean = scrub_text(message)
        if clean != message:  # untouched otherwise: a formatter may read the args
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = scrub_text(text)
        return record


def scrub_stdlib_records() -> None:
    """Make every stdlib log record scrubbed (once per process)."""
    if not isinstance(logging.getLogRecordFactory(), _ScrubbingFactory):
        logging.setLogRecordFactory(_ScrubbingFactory(logging.getLogRecordFactory()))
