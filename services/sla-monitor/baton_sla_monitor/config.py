"""SLA monitor settings, resolved once at start-up."""

from __future__ import annotations

from pydantic import Field

from baton_shared.settings import DatabaseSettings


class SlaSettings(DatabaseSettings):
    host: str = Field(default="127.0.0.1", alias="BATON_SLA_HOST")
    port: int = Field(default=8002, alias="BATON_SLA_PORT")
    express_sql_seconds: float = Field(default=300, gt=0, alias="BATON_SLA_EXPRESS_SQL_SECONDS")
    sql_seconds: float = Field(default=3600, gt=0, alias="BATON_SLA_SQL_SECONDS")
    tick_seconds: float = Field(default=0.2, gt=0, alias="BATON_SLA_TICK_SECONDS")
