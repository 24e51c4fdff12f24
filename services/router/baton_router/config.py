"""Router settings, resolved once at start-up."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from baton_router.links import LinkSigner
from baton_router.secret_box import LOCAL_SECRET_KEY, SecretBox, keys_of
from baton_router.webhook_targets import TargetPolicy, parse_allow
from baton_shared.pipeline import RetryPolicy
from baton_shared.pipeline.settings import (
    BackoffSeconds,
    ConsumeBatch,
    MaxAttempts,
    MaxBackoffSeconds,
)
from baton_shared.settings import DatabaseSettings
from baton_shared.sla_policy import SlaPolicySettings

LOCAL_LINK_SECRET = "local-link-secret-not-for-production"
# Standard Webhooks' example schedule: retry after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


class RouterSettings(DatabaseSettings, SlaPolicySettings):
    """The SLA policy settings (``BATON_SLA_POLICY_FILE``, ``BATON_SLA_*_SECONDS``) are
    the SLA monitor's own (:class:`SlaPolicySettings`): the due time a rep is told is the
    deadline the monitor's clock fires at."""

    host: str = Field(default="127.0.0.1", alias="BATON_ROUTER_HOST")
    port: int = Field(default=8001, alias="BATON_ROUTER_PORT")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, alias="BATON_WEBHOOK_TIMEOUT")
    retry_schedule_seconds: Annotated[tuple[float, ...], NoDecode] = Field(
        default=DEFAULT_RETRY_SCHEDULE, alias="BATON_WEBHOOK_RETRY_SCHEDULE"
    )
    dispatch_poll_seconds: float = Field(default=0.5, gt=0, alias="BATON_DISPATCH_POLL_SECONDS")
    outbox_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        alias="BATON_OUTBOX_LEASE_SECONDS",
        description="How long a router owns an outbox row it is delivering; after a crash "
        "another router retries it then. Keep it above BATON_WEBHOOK_TIMEOUT",
    )
    webhook_concurrency: int = Field(
        default=4,
        ge=1,
        le=100,
        alias="BATON_WEBHOOK_CONCURRENCY",
        description="Webhook deliveries in flight per endpoint (rep or nurture track), "
        "counted across every router sharing the database",
    )
    public_url: str | None = Field(
        default=None,
        alias="BATON_ROUTER_PUBLIC_URL",
        description="Base URL reps reach this API at (accept/reject links in webhooks)",
    )
    link_secret: str = Field(
        default=LOCAL_LINK_SECRET,
        min_length=16,
        alias="BATON_ROUTER_LINK_SECRET",
        description="HMAC key of reps' one-click links; the local default is refused "
        "outside BATON_ENV=local/test",
    )
    link_ttl_seconds: float = Field(
        default=7 * 86_400,
        gt=0,
        alias="BATON_ROUTER_LINK_TTL_SECONDS",
        description="How long a one-click link in an assignment message works",
    )
    drain_seconds: float = Field(
        default=5.0,
        gt=0,
        alias="BATON_ROUTER_DRAIN_SECONDS",
        description="How often queued SQLs are retried (shifts start, out-of-office ends)",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        alias="BATON_ROUTER_MAX_BODY_BYTES",
        description="Largest request body; a larger one is refused (413) before it is read",
    )
    max_future_seconds: float = Field(
        default=86_400,
        ge=0,
        alias="BATON_ROUTER_MAX_FUTURE_SECONDS",
        description="How far ahead of now a rep's activity may be dated (occurred_at)",
    )
    max_past_seconds: float = Field(
        default=30 * 86_400,
        ge=0,
        alias="BATON_ROUTER_MAX_PAST_SECONDS",
        description="How far back a rep's activity may be dated (occurred_at)",
    )
    max_reassignments: int = Field(
        default=2,
        ge=0,
        le=20,
        alias="BATON_ROUTER_MAX_REASSIGNMENTS",
        description="Re-assignments per lead after SLA breaches, outside any pool's own cap",
    )

    secret_key: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(LOCAL_SECRET_KEY,),
        alias="BATON_ROUTER_SECRET_KEY",
        description="Key(s) sealing webhook signing secrets in PostgreSQL, comma-separated "
        "(16+ characters each): the first seals, every one opens; the local default is "
        "refused outside BATON_ENV=local/test",
    )
    secret_grace_seconds: float = Field(
        default=86_400,
        ge=0,
        alias="BATON_ROUTER_SECRET_GRACE_SECONDS",
        description="How long a rotated-out webhook secret still signs (both signatures sent)",
    )
    webhook_check: bool = Field(
        default=False,
        alias="BATON_ROUTER_WEBHOOK_CHECK",
        description="Refuse webhook and Slack URLs that resolve to loopback, link-local, "
        "private or metadata addresses, at registration and at delivery; always on with "
        "BATON_ENV=production",
    )
    webhook_allow: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        alias="BATON_ROUTER_WEBHOOK_ALLOW",
        description="Comma-separated CIDRs, addresses and host names of on-premise "
        "receivers the webhook target check lets through",
    )

    consume_batch: ConsumeBatch = Field(default=500, alias="BATON_ROUTER_CONSUME_BATCH")
    lookahead: int = Field(
        default=5000,
        ge=1,
        alias="BATON_ROUTER_LOOKAHEAD",
        description="Transitions read ahead of routing, among which an express-lane SQL is"
        " decided before the bulk queued ahead of it",
    )
    consume_max_attempts: MaxAttempts = Field(
        default=RetryPolicy.max_attempts, alias="BATON_ROUTER_CONSUME_MAX_ATTEMPTS"
    )
    consume_backoff_seconds: BackoffSeconds = Field(
        default=RetryPolicy.backoff_seconds, alias="BATON_ROUTER_CONSUME_BACKOFF_SECONDS"
    )
    consume_max_backoff_seconds: MaxBackoffSeconds = Field(
        default=RetryPolicy.max_backoff_seconds, alias="BATON_ROUTER_CONSUME_MAX_BACKOFF_SECONDS"
    )

    @model_validator(mode="after")
    def _lease_outlives_a_request(self) -> RouterSettings:
        if self.outbox_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError(
                "BATON_OUTBOX_LEASE_SECONDS must be longer than BATON_WEBHOOK_TIMEOUT, or a "
                "slow delivery is retried by another router while still in flight"
            )
        return self

    @model_validator(mode="after")
    def _refuse_local_link_secret(self) -> RouterSettings:
        if not self.is_local and self.link_secret == LOCAL_LINK_SECRET:
            raise ValueError(
                "BATON_ROUTER_LINK_SECRET must be set to a secret outside BATON_ENV=local"
            )
        return self

    @property
    def link_signer(self) -> LinkSigner:
        return LinkSigner(self.link_secret, timedelta(seconds=self.link_ttl_seconds), self.base_url)

    @model_validator(mode="after")
    def _refuse_local_secret_key(self) -> RouterSettings:
        if any(len(key) < 16 for key in self.secret_key) or not self.secret_key:
            raise ValueError("BATON_ROUTER_SECRET_KEY: each key needs 16 or more characters")
        if not self.is_local and LOCAL_SECRET_KEY in self.secret_key:
            raise ValueError(
                "BATON_ROUTER_SECRET_KEY must be set to a secret outside BATON_ENV=local"
            )
        return self

    @property
    def secret_box(self) -> SecretBox:
        return SecretBox(self.secret_key)

    @property
    def target_policy(self) -> TargetPolicy:
        networks, hosts = parse_allow(self.webhook_allow)
        return TargetPolicy(self.webhook_check or self.env == "production", networks, hosts)

    @property
    def consume_retry(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.consume_max_attempts,
            backoff_seconds=self.consume_backoff_seconds,
            max_backoff_seconds=self.consume_max_backoff_seconds,
        )

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @field_validator("webhook_allow", mode="before")
    @classmethod
    def _split_allow(cls, raw: object) -> object:
        return tuple(raw.split(",")) if isinstance(raw, str) else raw

    @field_validator("secret_key", mode="before")
    @classmethod
    def _split_keys(cls, raw: object) -> object:
        return keys_of(raw) if isinstance(raw, str) else raw

    @field_validator("retry_schedule_seconds", mode="before")
    @classmethod
    def _split_schedule(cls, raw: object) -> object:
        if isinstance(raw, str):
            return tuple(float(part) for part in raw.split(",") if part.strip())
        return raw
