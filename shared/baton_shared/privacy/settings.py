"""Privacy mode's settings: the master key every service shares, and how long a
process may keep a data key it fetched (the bound on "erased everywhere").

Privacy mode is on when ``BATON_PRIVACY_KEY`` is set; it is required in production.
From the master key two keys are derived (HKDF-SHA256): ``id_key`` keys the pseudonyms
of ids, ``wrap_key`` encrypts the per-lead data keys kept in PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

PRIVACY_KEY = "BATON_PRIVACY_KEY"
MIN_KEY_LENGTH = 16


@dataclass(frozen=True)
class PrivacyKeys:
    """The keys derived from the master key."""

    id_key: bytes = field(repr=False)
    wrap_key: bytes = field(repr=False)


@lru_cache(maxsize=4)
def derive_keys(master: str) -> PrivacyKeys:
    """``id_key`` and ``wrap_key`` from the master key (HKDF-SHA256, one ``info`` each)."""

    def derive(info: bytes) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"baton-privacy", info=info)
        return hkdf.derive(master.encode())

    return PrivacyKeys(id_key=derive(b"baton-privacy-id"), wrap_key=derive(b"baton-privacy-wrap"))


class PrivacySettings(BaseSettings):
    """``BATON_PRIVACY_KEY`` and ``BATON_PRIVACY_KEY_CACHE_SECONDS``; mixed into every
    service's settings."""

    privacy_key: SecretStr | None = Field(
        default=None,
        alias=PRIVACY_KEY,
        description="Turns privacy mode on: ids pseudonymised, personal fields sealed with "
        "per-lead keys that erasure destroys (required in production)",
    )
    privacy_key_cache_seconds: float = Field(
        default=60,
        ge=0,
        alias="BATON_PRIVACY_KEY_CACHE_SECONDS",
        description="How long a process keeps using a data key it fetched: the bound on "
        "how long an erased lead stays readable",
    )

    @field_validator("privacy_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, raw: object) -> object:
        return None if raw == "" else raw  # compose passes ${BATON_PRIVACY_KEY:-}

    @model_validator(mode="after")
    def _privacy_key_in_production(self) -> PrivacySettings:
        key = self.privacy_key
        if key is None and getattr(self, "env", None) == "production":
            raise ValueError(f"{PRIVACY_KEY} must be set to a secret in BATON_ENV=production")
        if key is not None and len(key.get_secret_value()) < MIN_KEY_LENGTH:
            raise ValueError(f"{PRIVACY_KEY} must be at least {MIN_KEY_LENGTH} characters")
        return self

    @property
    def privacy_enabled(self) -> bool:
        return self.privacy_key is not None

    @property
    def privacy_keys(self) -> PrivacyKeys | None:
        """The derived keys, or None when privacy mode is off."""
        if self.privacy_key is None:
            return None
        return derive_keys(self.privacy_key.get_secret_value())
