"""Sealing: personal fields encrypted with one lead's data key (AES-256-GCM).

A sealed token is ``v1:<subject>:<base64url(nonce | ciphertext)>``; the subject (the
pseudonymous lead id whose key sealed it) is also the associated data, so a token
cannot be passed off as another lead's. Once the subject's key is destroyed the token
opens to nothing: :func:`unseal` gives None.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_BYTES = 32


class SealError(ValueError):
    """The token is not a sealed token this version can read."""


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=8 * KEY_BYTES)


def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """``nonce | ciphertext`` of ``plaintext`` under ``key`` (AES-GCM, random nonce)."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes | None:
    """What :func:`encrypt` sealed, or None when ``key`` cannot open it."""
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):
        return None


def seal(key: bytes, subject: str, fields: dict[str, Any]) -> str:
    """``fields`` (JSON) sealed under ``subject``'s data key ``key``."""
    blob = encrypt(key, _dumps(fields), subject.encode())
    return f"{VERSION}:{subject}:{base64.urlsafe_b64encode(blob).decode()}"


def _dumps(fields: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(fields, option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError:  # integers past 64 bits: JSON allows them
        return json.dumps(fields, separators=(",", ":"), default=str).encode()


def _parts(token: str) -> tuple[str, bytes]:
    version, _, rest = token.partition(":")
    subject, _, encoded = rest.rpartition(":")
    if version != VERSION or not subject:
        raise SealError(f"not a {VERSION} sealed token")
    try:
        blob = base64.b64decode(encoded, altchars=b"-_", validate=True)
    except ValueError:
        raise SealError("sealed token is not base64url") from None
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise SealError("sealed token is too short")
    return subject, blob


def sealed_subject(token: str) -> str:
    """The subject (pseudonymous lead id) whose key sealed ``token``."""
    return _parts(token)[0]


def unseal(key: bytes | None, token: str) -> dict[str, Any] | None:
    """The sealed fields, or None when the key is gone or is not the one that sealed
    (erased: a later key of the same subject does not open earlier tokens)."""
    subject, blob = _parts(token)
    if key is None:
        return None
    plaintext = decrypt(key, blob, subject.encode())
    if plaintext is None:
        return None
    fields = orjson.loads(plaintext)
    if not isinstance(fields, dict):
        raise SealError("sealed token does not hold an object")
    return fields
