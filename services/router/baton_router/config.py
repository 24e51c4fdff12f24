"""Router settings, resolved once at start-up."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from baton_shared.settings import DatabaseSettings

# Standard Webhooks' example schedule: retry after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


class RouterSettings(DatabaseSettings):
    host: str = Field(default="127.0.0.1", alias="BATON_ROUTER_HOST")
    port: int = Field(default=8001, alias="BATON_ROUTER_PORT")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, alias="BATON_WEBHOOK_TIMEOUT")
    retry_schedule_seconds: Annotated[tuple[float, ...], NoDecode] = Field(
        default=DEFAULT_RETRY_SCHEDULE, alias="BATON_WEBHOOK_RETRY_SCHEDULE"
    )
    dispatch_poll_seconds: float = Field(default=0.5, gt=0, alias="BATON_DISPATCH_POLL_SECONDS")

    @field_validator("retry_schedule_seconds", mode="before")
    @classmethod
    def _split_schedule(cls, raw: object) -> object:
        if isinstance(raw, str):
            return tuple(float(part) for part in raw.split(",") if part.strip())
        return raw
