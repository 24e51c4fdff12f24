"""SLA monitor settings, resolved once at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from baton_shared.settings import DatabaseSettings


class SlaSettings(DatabaseSettings):
    host: str = Field(default="127.0.0.1", alias="BATON_SLA_HOST")
    port: int = Field(default=8002, alias="BATON_SLA_PORT")
    policy_file: Path | None = Field(
        default=None,
        alias="BATON_SLA_POLICY_FILE",
        description="SLA policy YAML; unset: the shipped default_policy.yaml",
    )
    express_sql_seconds: float | None = Field(
        default=None,
        gt=0,
        alias="BATON_SLA_EXPRESS_SQL_SECONDS",
        description="Overrides the policy's default express SQL first-touch window",
    )
    sql_seconds: float | None = Field(
        default=None,
        gt=0,
        alias="BATON_SLA_SQL_SECONDS",
        description="Overrides the policy's default SQL first-touch window",
    )
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
