"""Scorer settings, resolved once at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from baton_shared.settings import ServiceSettings


class ScorerSettings(ServiceSettings):
    host: str = Field(default="127.0.0.1", alias="BATON_SCORER_HOST")
    port: int = Field(default=8003, alias="BATON_SCORER_PORT")
    data_dir: Path = Field(default=Path(".devstack/scorer"), alias="BATON_SCORER_DATA_DIR")
    rules_file: Path | None = Field(default=None, alias="BATON_SCORER_RULES_FILE")
    batch_max: int = Field(default=2000, ge=1, alias="BATON_SCORER_BATCH_MAX")
