"""SLA monitor settings, resolved once at start-up."""

from __future__ import annotations

from pydantic import Field

from baton_shared.settings import DatabaseSettings
from baton_shared.sla_policy import SlaPolicySettings


class SlaSettings(DatabaseSettings, SlaPolicySettings):
    """The policy settings (``BATON_SLA_POLICY_FILE``, ``BATON_SLA_*_SECONDS``) come from
    :class:`SlaPolicySettings`, shared with the router."""

    host: str = Field(default="127.0.0.1", alias="BATON_SLA_HOST")
    port: int = Field(default=8002, alias="BATON_SLA_PORT")
    tick_seconds: float = Field(default=0.2, gt=0, alias="BATON_SLA_TICK_SECONDS")
    sweep_batch: int = Field(default=1000, ge=1, le=20_000, alias="BATON_SLA_SWEEP_BATCH")
    consume_batch: int = Field(
        default=1000,
        ge=1,
        le=5000,
        alias="BATON_SLA_CONSUME_BATCH",
        description="Records per consumer batch (one database transaction)",
    )
    stats_seconds: float = Field(default=15, gt=0, alias="BATON_SLA_STATS_SECONDS")
