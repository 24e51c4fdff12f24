"""The worker's faust and producer tuning comes from ScorerSettings (environment names)."""

from __future__ import annotations

from pathlib import Path

from baton_scorer.app import create_app
from baton_scorer.config import ScorerSettings
from baton_scorer.rules_source import RulesSource
from baton_shared.settings import ServiceSettings


def settings(tmp_path: Path, **env: str) -> ScorerSettings:
    base = {
        "BATON_ENV": "test",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "BATON_SCORER_DATA_DIR": str(tmp_path),
    }
    return ScorerSettings.model_validate(base | env)


def test_faust_tuning_is_read_from_the_environment(tmp_path: Path) -> None:
    app = create_app(
        settings(
            tmp_path,
            BATON_SCORER_STREAM_BUFFER_MAX="1024",
            BATON_SCORER_MAX_POLL_RECORDS="100",
            BATON_SCORER_COMMIT_INTERVAL_SECONDS="2.5",
            BATON_SCORER_SESSION_TIMEOUT_SECONDS="30",
            BATON_SCORER_HEARTBEAT_INTERVAL_SECONDS="3",
            BATON_SCORER_PRODUCER_LINGER_SECONDS="0.02",
            BATON_SCORER_PRODUCER_MAX_BATCH_BYTES="65536",
        ),
        RulesSource(None),
    )
    conf = app.conf
    assert conf.stream_buffer_maxsize == 1024
    assert conf.broker_max_poll_records == 100
    assert conf.broker_commit_interval == 2.5
    assert conf.broker_session_timeout == 30
    assert conf.broker_heartbeat_interval == 3
    assert conf.producer_linger == 0.02
    assert conf.producer_max_batch_size == 65536


def test_every_tuning_setting_has_a_default_and_a_description(tmp_path: Path) -> None:
    defaults = settings(tmp_path)
    assert (defaults.batch_max, defaults.batch_within_seconds) == (2000, 0.25)
    assert defaults.timer_tick_seconds == 1.0
    own = ScorerSettings.model_fields.keys() - ServiceSettings.model_fields.keys()
    assert [name for name in own if not ScorerSettings.model_fields[name].description] == []
