"""Webhook signing secrets at rest: sealed with the router's key, opened only to sign.

A rep's (or nurture track's) ``webhook_secret`` column holds one sealed value: Fernet
(AES-128-CBC with HMAC-SHA256, from ``cryptography``) over a small JSON document of
:class:`SigningSecrets` — the current secret and, for a rotation's grace period, the
previous one and when it stops signing. The stores seal what they write and the
dispatcher opens what it signs with, so PostgreSQL (and its backups) never hold a
secret in clear.

``BATON_ROUTER_SECRET_KEY`` is one or more comma-separated keys: the first seals, every
one opens (``MultiFernet``), so the key itself can be rotated by putting a new one first
and restarting. Pure: ``now`` is passed in.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from baton_router.signing import SECRET_PREFIX

#: The development key; the router refuses it outside ``BATON_ENV=local``/``test``.
LOCAL_SECRET_KEY = "local-secret-key-not-for-production"


FERNET_PREFIX = b"gAAAAA"  # a Fernet token's version byte and the start of its time, base64


class SealedSecretUnreadable(ValueError):
    """A sealed value none of the keys opens (a wrong or missing key)."""


@dataclass(frozen=True)
class SigningSecrets:
    """What signs a receiver's webhooks: ``current``, and ``previous`` until
    ``previous_until`` (a rotation's grace period)."""

    current: str
    previous: str | None = None
    previous_until: datetime | None = None

    def signing(self, now: datetime) -> tuple[str, ...]:
        """The secrets that sign at ``now``: the current one, then the previous one while
        its grace period lasts."""
        if self.previous and self.previous_until is not None and now < self.previous_until:
            return (self.current, self.previous)
        return (self.current,)

    def rotated(self, new: str, now: datetime, grace: timedelta) -> SigningSecrets:
        """``new`` becomes current; the current one keeps signing for ``grace``."""
        if grace <= timedelta(0):
            return SigningSecrets(new)
        return SigningSecrets(new, self.current, now + grace)

    def to_json(self) -> dict[str, Any]:
        until = self.previous_until.isoformat() if self.previous_until else None
        return {"current": self.current, "previous": self.previous, "previous_until": until}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SigningSecrets:
        until = raw.get("previous_until")
        return cls(
            raw["current"], raw.get("previous"), datetime.fromisoformat(until) if until else None
        )


def keys_of(raw: str) -> tuple[str, ...]:
    """``BATON_ROUTER_SECRET_KEY``'s keys, in order."""
    return tuple(key.strip() for key in raw.split(",") if key.strip())


def box_from_environment(env: Mapping[str, str]) -> SecretBox:
    """The box of a command run beside the router (``baton routing``): the router's
    ``BATON_ROUTER_SECRET_KEY``, or the local key where ``BATON_ENV`` is local or test."""
    keys = keys_of(env.get("BATON_ROUTER_SECRET_KEY", ""))
    if keys:
        return SecretBox(keys)
    if env.get("BATON_ENV", "local") in ("local", "test"):
        return SecretBox.local()
    raise OSError("BATON_ROUTER_SECRET_KEY is not set: it seals the webhook secrets")


def _fernet_key(key: str) -> bytes:
    """A Fernet key from any key text (its SHA-256, so any long random string works)."""
    return base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())


class SecretBox:
    """Seals and opens :class:`SigningSecrets` with the router's key(s)."""

    def __init__(self, keys: tuple[str, ...]):
        if not keys:
            raise ValueError("at least one key")
        self._fernet = MultiFernet([Fernet(_fernet_key(k)) for k in keys])

    @classmethod
    def local(cls) -> SecretBox:
        return cls((LOCAL_SECRET_KEY,))

    def seal(self, secrets: SigningSecrets | str) -> str:
        """The value to store (a bare secret is sealed as the only current one)."""
        if isinstance(secrets, str):
            secrets = SigningSecrets(secrets)
        return self._fernet.encrypt(orjson.dumps(secrets.to_json())).decode()

    def seal_bytes(self, raw: bytes) -> bytes:
        """Any bytes sealed (a stored response that holds a secret made for it)."""
        return self._fernet.encrypt(raw)

    def open_bytes(self, stored: bytes) -> bytes:
        """Bytes :meth:`seal_bytes` sealed (bytes stored before sealing: as they are)."""
        if not stored.startswith(FERNET_PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored)
        except InvalidToken:
            raise SealedSecretUnreadable("sealed with a key no longer listed") from None

    def open(self, stored: str) -> SigningSecrets:
        """The secrets a stored value holds. A bare ``whsec_`` value (written before
        secrets were sealed, e.g. by an older router during an upgrade) is taken as is."""
        if stored.startswith(SECRET_PREFIX):
            return SigningSecrets(stored)
        try:
            return SigningSecrets.from_json(orjson.loads(self._fernet.decrypt(stored.encode())))
        except InvalidToken:
            raise SealedSecretUnreadable(
                "a webhook secret is sealed with a key BATON_ROUTER_SECRET_KEY does not list"
            ) from None
