"""Ingest settings, resolved once at start-up."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from baton_shared.settings import ServiceSettings

LOCAL_WRITE_KEY = "local-write-key"


class IngestSettings(ServiceSettings):
    host: str = Field(default="127.0.0.1", alias="BATON_INGEST_HOST")
    port: int = Field(default=8000, alias="BATON_INGEST_PORT")
    write_keys: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset({LOCAL_WRITE_KEY}), alias="BATON_INGEST_WRITE_KEYS"
    )
    max_future_skew_seconds: float = Field(default=86_400, alias="BATON_INGEST_MAX_FUTURE_SECONDS")
    produce_timeout_seconds: float = Field(default=10.0, alias="BATON_INGEST_PRODUCE_TIMEOUT")
    retry_after_seconds: int = Field(default=5, alias="BATON_INGEST_RETRY_AFTER")

    @field_validator("write_keys", mode="before")
    @classmethod
    def _split_keys(cls, raw: object) -> object:
        if isinstance(raw, str):
            return frozenset(k.strip() for k in raw.split(",") if k.strip())
        return raw

    @model_validator(mode="after")
    def _require_keys(self) -> IngestSettings:
        if not self.write_keys:
            raise ValueError("BATON_INGEST_WRITE_KEYS must list at least one writeKey")
        if not self.is_local and LOCAL_WRITE_KEY in self.write_keys:
            raise ValueError(
                "BATON_INGEST_WRITE_KEYS must not use the local demo key outside local"
            )
        return self
