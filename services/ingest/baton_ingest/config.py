"""Ingest settings, resolved once at start-up."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from baton_ingest.minimise import Minimisation
from baton_ingest.pages import DEFAULT_PAGE_RULES, PageRule, parse_page_rules
from baton_ingest.publisher import ProducerTuning
from baton_shared.settings import ServiceSettings

LOCAL_WRITE_KEY = "local-write-key"
# The shipped scoring rules' express lanes (services/scorer/baton_scorer/default_rules.yaml).
DEFAULT_EXPRESS_EVENTS = frozenset(
    {"Demo Requested", "Contact Sales", "Pricing Inquiry", "Trial Started"}
)


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
    database_url: str = Field(
        default="postgresql://baton@127.0.0.1:5432/baton",
        alias="DATABASE_URL",
        description="Privacy mode only: the PostgreSQL holding the data keys",
    )
    express_events: Annotated[frozenset[str], NoDecode] = Field(
        default=DEFAULT_EXPRESS_EVENTS,
        alias="BATON_INGEST_EXPRESS_EVENTS",
        description="Track event names also published on leads.express, which the scorer"
        " reads ahead of the bulk (comma-separated; the scoring rules' express lanes)",
    )
    max_pending_events: int = Field(
        default=ProducerTuning.max_pending_events,
        ge=1,
        alias="BATON_INGEST_MAX_PENDING_EVENTS",
        description="Events per process waiting for Kafka before a request without an"
        " express event is refused with 503",
    )
    max_pending_seconds: float = Field(
        default=ProducerTuning.max_pending_seconds,
        gt=0,
        alias="BATON_INGEST_MAX_PENDING_SECONDS",
        description="How long the oldest event waiting for Kafka may have waited before a"
        " request without an express event is refused with 503",
    )
    max_loop_lag_seconds: float = Field(
        default=ProducerTuning.max_loop_lag_seconds,
        gt=0,
        alias="BATON_INGEST_MAX_LOOP_LAG_SECONDS",
        description="How far behind (smoothed) a process's event loop may run before a"
        " request without an express event is refused with 503",
    )
    overload_retry_after_seconds: int = Field(
        default=1,
        ge=1,
        alias="BATON_INGEST_OVERLOAD_RETRY_AFTER",
        description="Retry-After (seconds) of the 503 ingest answers when over capacity",
    )
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
    sendgrid_max_age_seconds: float = Field(
        default=300,
        gt=0,
        alias="BATON_INGEST_SENDGRID_MAX_AGE_SECONDS",
        description="Oldest (or furthest ahead) a SendGrid signature timestamp may be",
    )
    workers: int = Field(
        default=1,
        ge=1,
        alias="BATON_INGEST_WORKERS",
        description="Server processes; rate limits and duplicate marks are per process",
    )
    access_log: bool = Field(default=True, alias="BATON_INGEST_ACCESS_LOG")
    ip_truncate: bool | None = Field(
        default=None,
        alias="BATON_INGEST_IP_TRUNCATE",
        description="Keep an IP's /24 (IPv4) or /48 (IPv6) only; default on in production",
    )
    drop_user_agent: bool | None = Field(
        default=None,
        alias="BATON_INGEST_DROP_USER_AGENT",
        description="Drop events' user agents; default on in production",
    )
    dedup_window_size: int = Field(default=100_000, ge=0, alias="BATON_INGEST_DEDUP_WINDOW")
    producer_max_batch_bytes: int = Field(
        default=ProducerTuning.max_batch_bytes,
        ge=1024,
        alias="BATON_INGEST_PRODUCER_MAX_BATCH_BYTES",
        description="Largest record batch the producer sends to one partition, in bytes",
    )
    producer_linger_ms: int = Field(
        default=ProducerTuning.linger_ms,
        ge=0,
        alias="BATON_INGEST_PRODUCER_LINGER_MS",
        description="How long a lone event waits for others to share its produce request",
    )
    connect_retry_first_seconds: float = Field(
        default=ProducerTuning.connect_retry_first_seconds,
        gt=0,
        alias="BATON_INGEST_CONNECT_RETRY_FIRST_SECONDS",
        description="First wait before reconnecting to Kafka; doubles after each failure",
    )
    connect_retry_max_seconds: float = Field(
        default=ProducerTuning.connect_retry_max_seconds,
        gt=0,
        alias="BATON_INGEST_CONNECT_RETRY_MAX_SECONDS",
        description="Longest wait between two attempts to connect to Kafka",
    )

    _split_keys = field_validator("write_keys", "cors_origins", "express_events", mode="before")(
        _split
    )

    @property
    def producer_tuning(self) -> ProducerTuning:
        return ProducerTuning(
            max_batch_bytes=self.producer_max_batch_bytes,
            linger_ms=self.producer_linger_ms,
            connect_retry_first_seconds=self.connect_retry_first_seconds,
            connect_retry_max_seconds=self.connect_retry_max_seconds,
            max_pending_events=self.max_pending_events,
            max_loop_lag_seconds=self.max_loop_lag_seconds,
            max_pending_seconds=self.max_pending_seconds,
        )

    @property
    def minimisation(self) -> Minimisation:
        """What ingest cuts from each event; unset settings follow ``BATON_ENV=production``."""
        production = self.env == "production"
        return Minimisation(
            truncate_ip=production if self.ip_truncate is None else self.ip_truncate,
            drop_user_agent=production if self.drop_user_agent is None else self.drop_user_agent,
        )

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
