"""The scorer's consumer override stays a faithful port of faust's, with one change."""

from __future__ import annotations

import hashlib
import inspect

from faust.transport.consumer import Consumer

from baton_scorer.app import create_app
from baton_scorer.config import ScorerSettings
from baton_scorer.faust_consumer import UPSTREAM_SHA256, BatonConsumer
from baton_scorer.rules_source import RulesSource


def test_upstream_drain_loop_is_the_one_the_override_was_ported_from() -> None:
    """An upgrade of faust-streaming that changes ``_drain_messages`` fails here: port
    the change into ``BatonConsumer._drain_messages`` and update UPSTREAM_SHA256."""
    source = inspect.getsource(Consumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == UPSTREAM_SHA256


def test_override_hands_over_directly_and_keeps_the_race_for_rebalances() -> None:
    ours = inspect.getsource(BatonConsumer._drain_messages)
    upstream = inspect.getsource(Consumer._drain_messages)
    assert "await callback(message)" in ours and "await callback(message)" not in upstream
    assert "self.wait_first(callback(message), self.suspend_flow.wait())" in ours


def test_the_worker_uses_the_override(tmp_path) -> None:
    settings = ScorerSettings.model_validate(
        {
            "BATON_ENV": "test",
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "BATON_SCORER_DATA_DIR": str(tmp_path),
        }
    )
    app = create_app(settings, RulesSource(None))
    assert app.transport.Consumer is BatonConsumer
