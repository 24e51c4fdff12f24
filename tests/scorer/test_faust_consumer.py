"""The scorer's consumer override stays a faithful port of faust's, with one change."""

from __future__ import annotations

import hashlib
import inspect

from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types.tuples import Message

from baton_scorer.app import create_app
from baton_scorer.config import ScorerSettings
from baton_scorer.faust_consumer import UPSTREAM_ACK_SHA256, UPSTREAM_SHA256, BatonConsumer
from baton_scorer.rules_source import RulesSource


def test_upstream_drain_loop_is_the_one_the_override_was_ported_from() -> None:
    """An upgrade of faust-streaming that changes ``_drain_messages`` fails here: port
    the change into ``BatonConsumer._drain_messages`` and update UPSTREAM_SHA256."""
    source = inspect.getsource(Consumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == UPSTREAM_SHA256


def test_upstream_ack_is_the_one_the_override_relies_on() -> None:
    """``BatonConsumer.ack`` marks a message done the way upstream's does; an upgrade
    that changes upstream's bookkeeping fails here."""
    source = inspect.getsource(Consumer.ack)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == UPSTREAM_ACK_SHA256


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


def test_a_record_acked_mid_rebalance_is_not_committed(tmp_path, monkeypatch) -> None:
    """faust skips a record that reaches a stream while partitions are being revoked and
    acks it unprocessed; counted, the revocation's commit would move the group past a
    record nobody scored. Such an ack (or one from an older generation) is not passed
    to faust's commit bookkeeping, but the record no longer holds up the rebalance."""
    settings = ScorerSettings.model_validate(
        {
            "BATON_ENV": "test",
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "BATON_SCORER_DATA_DIR": str(tmp_path),
        }
    )
    app = create_app(settings, RulesSource(None))
    counted: list[int] = []
    monkeypatch.setattr(
        AIOKafkaConsumer, "ack", lambda self, message: counted.append(message.offset) or True
    )
    consumer = app.consumer
    generation = app.consumer_generation_id

    def record(offset: int, generation: int = generation) -> Message:
        return Message(
            settings.topics.events, 0, offset, 0.0, 0, {}, b"k", b"v", None,
            generation_id=generation,
        )  # fmt: skip

    app.flow_control.resume()
    assert consumer.ack(record(0)) is True
    app.flow_control.suspend()  # what faust does when partitions are revoked or it stops
    skipped = record(1)
    assert consumer.ack(skipped) is False
    assert skipped.acked
    app.flow_control.resume()
    assert consumer.ack(record(2, generation - 1)) is False  # read before a rebalance
    assert consumer.ack(record(3)) is True
    assert counted == [0, 3]
