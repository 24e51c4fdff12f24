"""Pseudonyms: the keyed hash an id travels as in privacy mode.

The same id gives the same pseudonym in every service (they share ``id_key``), so
records still join and partition by lead; without the key nobody can tell whose it is.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "p_"


def pseudonym(id_key: bytes, raw: str) -> str:
    """``p_`` and the first 32 hex digits of HMAC-SHA256(id_key, raw)."""
    return PREFIX + hmac.new(id_key, raw.encode(), hashlib.sha256).hexdigest()[:32]


def pseudonym_of_identity(id_key: bytes, value: str) -> str:
    """The pseudonym of an id as a caller gives it: an email (a value with ``@``) is
    lower-cased and stripped first, as ingest files it."""
    return pseudonym(id_key, value.strip().lower() if "@" in value else value)


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` has a pseudonym's shape (``p_`` and 32 hex digits)."""
    tail = value[len(PREFIX) :]
    return (
        value.startswith(PREFIX) and len(tail) == 32 and all(c in "0123456789abcdef" for c in tail)
    )
