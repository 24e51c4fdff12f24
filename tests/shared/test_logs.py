"""Logging: module loggers made at import follow the configuration set at start-up."""

from __future__ import annotations

import json

import pytest

from baton_shared.log_privacy import lead_hash
from baton_shared.logs import configure_logging, get_logger

log = get_logger("tests.shared.logs")  # created before configure_logging, like every module


def test_module_logger_made_before_configuration_writes_json_at_the_configured_level(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("INFO", "json", b"log-key")
    log.debug("not_shown", secret=1)
    log.info("lead_assigned", lead_id="lead-1", rep_id="rep-1")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "lead_assigned"
    assert record["lead_id"] == lead_hash(b"log-key", "lead-1")  # never the id itself
    assert record["logger"] == "tests.shared.logs"
    assert record["level"] == "info"
    assert record["timestamp"].endswith("Z")
