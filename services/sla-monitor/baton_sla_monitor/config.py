"""SLA monitor settings, resolved once at start-up."""

from __future__ import annotations

from pydantic import Field

from baton_shared.pipeline import RetryPolicy
from baton_shared.pipeline.settings import (
    BackoffSeconds,
    ConsumeBatch,
    MaxAttempts,
    MaxBackoffSeconds,
)
from baton_shared.settings import DatabaseSettings
from baton_shared.sla_policy import SlaPolicySettings
from baton_sla_monitor.reporting.settings import ReportingSettings


class SlaSettings(DatabaseSettings, SlaPolicySettings, ReportingSettings):
    """The policy settings (``BATON_SLA_POLICY_FILE``, ``BATON_SLA_*_SECONDS``) come from
    :class:`SlaPolicySettings`, shared with the router."""

    host: str = Field(default="127.0.0.1", alias="BATON_SLA_HOST")
    port: int = Field(default=8002, alias="BATON_SLA_PORT")
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        alias="BATON_SLA_MAX_BODY_BYTES",
        description="Largest request body; a larger one is refused (413) before it is read",
    )
    tick_seconds: float = Field(default=0.2, gt=0, alias="BATON_SLA_TICK_SECONDS")
    sweep_batch: int = Field(default=1000, ge=1, le=20_000, alias="BATON_SLA_SWEEP_BATCH")
    stats_seconds: float = Field(default=15, gt=0, alias="BATON_SLA_STATS_SECONDS")
    consume_batch: ConsumeBatch = Field(default=1000, alias="BATON_SLA_CONSUME_BATCH")
    consume_max_attempts: MaxAttempts = Field(
        default=RetryPolicy.max_attempts, alias="BATON_SLA_CONSUME_MAX_ATTEMPTS"
    )
    consume_backoff_seconds: BackoffSeconds = Field(
        default=RetryPolicy.backoff_seconds, alias="BATON_SLA_CONSUME_BACKOFF_SECONDS"
    )
    consume_max_backoff_seconds: MaxBackoffSeconds = Field(
        default=RetryPolicy.max_backoff_seconds, alias="BATON_SLA_CONSUME_MAX_BACKOFF_SECONDS"
    )

    @property
    def consume_retry(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.consume_max_attempts,
            backoff_seconds=self.consume_backoff_seconds,
            max_backoff_seconds=self.consume_max_backoff_seconds,
        )
