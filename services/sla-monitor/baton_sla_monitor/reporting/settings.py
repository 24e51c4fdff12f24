"""The reporting part's settings, mixed into the SLA monitor's settings object."""

from __future__ import annotations

from pydantic import Field

from baton_shared.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    reporting: bool = Field(
        default=True,
        alias="BATON_SLA_REPORTING",
        description="Feed the conversion reporting store (and its gauges) from the topics",
    )
    mql_target_per_day: float = Field(
        default=0,
        ge=0,
        alias="BATON_SLA_MQL_TARGET_PER_DAY",
        description="Marketing's MQL volume target per day; 0: no target",
    )
    reporting_refresh_seconds: float = Field(
        default=60, gt=0, alias="BATON_SLA_REPORTING_REFRESH_SECONDS"
    )
    reporting_gauge_days: float = Field(
        default=30, gt=0, le=366, alias="BATON_SLA_REPORTING_GAUGE_DAYS"
    )
