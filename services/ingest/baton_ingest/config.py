"""Ingest settings, resolved once at start-up."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from baton_ingest.pages import DEFAULT_PAGE_RULES, PageRule, parse_page_rules
from baton_shared.settings import ServiceSettings

LOCAL_WRITE_KEY = "local-write-key"


def _split(raw: object) -> object:
    if isinstance(raw, str):
        return frozenset(k.strip() for k in raw.split(",") if k.strip())
    return raw


class IngestSettings(ServiceSettings):
    host: str = Field(default="127.0.0.1", alias="BATON_INGEST_HOST")
    port: int = Field(default=8000, alias="BATON_INGEST_PORT")
    write_keys: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset({LOCAL_WRITE_KEY}), alias="BATON_INGEST_WRITE_KEYS"
    )
    max_future_skew_seconds: float = Field(default=86_400, alias="BATON_INGEST_MAX_FUTURE_SECONDS")
    produce_timeout_seconds: float = Field(default=10.0, alias="BATON_INGEST_PRODUCE_TIMEOUT")
    retry_after_seconds: int = Field(default=5, alias="BATON_INGEST_RETRY_AFTER")
    rate_limit: str = Field(
        default="10000/second",
        alias="BATON_INGEST_RATE_LIMIT",
        description="Events per writeKey, in the `limits` notation (e.g. 500/second;20000/minute)",
    )
    cors_origins: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset({"*"}), alias="BATON_INGEST_CORS_ORIGINS"
    )
    page_rules: Annotated[tuple[PageRule, ...], NoDecode] = Field(
        default=DEFAULT_PAGE_RULES, alias="BATON_INGEST_PAGE_RULES"
    )
    sendgrid_verification_key: str | None = Field(
        default=None,
        alias="BATON_INGEST_SENDGRID_VERIFICATION_KEY",
        description="SendGrid's Signed Event Webhook public key (base64); enables verification",
    )
    workers: int = Field(
        default=1,
        ge=1,
        alias="BATON_INGEST_WORKERS",
        description="Server processes; rate limits and duplicate marks are per process",
    )
    access_log: bool = Field(default=True, alias="BATON_INGEST_ACCESS_LOG")
    dedup_window_size: int = Field(default=100_000, ge=0, alias="BATON_INGEST_DEDUP_WINDOW")

    _split_keys = field_validator("write_keys", "cors_origins", mode="before")(_split)

    @field_validator("page_rules", mode="before")
    @classmethod
    def _parse_page_rules(cls, raw: object) -> object:
        return parse_page_rules(raw) if isinstance(raw, str) else raw

    @field_validator("rate_limit")
    @classmethod
    def _valid_rate_limit(cls, raw: str) -> str:
        from limits import parse_many

        try:
            parse_many(raw)
        except ValueError as exc:
            raise ValueError(f"BATON_INGEST_RATE_LIMIT {raw!r}: {exc}") from exc
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
