"""The scorer's consumer overrides stay faithful ports of faust's, with the changes named."""

from __future__ import annotations

import hashlib
import inspect

from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP
from faust.types.tuples import Message

from baton_scorer import faust_consumer
from baton_scorer.app import create_app
from baton_scorer.config import ScorerSettings
from baton_scorer.faust_consumer import (
    UPSTREAM_ACK_SHA256,
    UPSTREAM_NEW_OFFSET_SHA256,
    UPSTREAM_SHA256,
    BatonConsumer,
)
from baton_scorer.rules_source import RulesSource


def test_upstream_drain_loop_is_the_one_the_override_was_ported_from() -> None:
    """An upgrade of faust-streaming that changes ``_drain_messages`` fails here: port
    the change into ``BatonConsumer._drain_messages`` and update UPSTREAM_SHA256."""
    source = inspect.getsource(Consumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == UPSTREAM_SHA256


def test_upstream_ack_and_commit_offset_are_the_ones_the_overrides_rely_on() -> None:
    """``BatonConsumer.ack`` and ``_new_offset`` keep upstream's bookkeeping; an upgrade
    that changes it fails here."""
    for method, digest in (
        (Consumer.ack, UPSTREAM_ACK_SHA256),
        (Consumer._new_offset, UPSTREAM_NEW_OFFSET_SHA256),
    ):
        source = inspect.getsource(method)
        assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest


def test_override_hands_over_directly_and_keeps_the_race_for_rebalances() -> None:
    ours = inspect.getsource(BatonConsumer._drain_messages)
    upstream = inspect.getsource(Consumer._drain_messages)
    assert "await callback(message)" in ours and "await callback(message)" not in upstream
    assert "self.wait_first(callback(message), self.suspend_flow.wait())" in ours
    # ... and drops what was fetched before a rebalance instead of handing it over
    assert "message.generation_id != app.consumer_generation_id" in ours
    # ... and hands a stream's records below the read offset over (a seek re-read them)
    assert "offset >= r_offset or acked_topic" in ours


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
    settings = _settings(tmp_path)
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


def test_no_commit_past_a_record_not_processed_and_the_partition_is_read_again(
    tmp_path, monkeypatch
) -> None:
    """Upstream would commit 13 over offsets 11 and 12 with 10 committed, passing over
    record 10. Here nothing is committed until 10 is done; if it stays undone while
    later records are, the partition is read again from 10."""
    monkeypatch.setattr(faust_consumer, "HOLE_SECONDS", 0.0)
    consumer = create_app(_settings(tmp_path), RulesSource(None)).consumer
    tp = TP("events", 0)
    consumer._committed_offset[tp] = 10
    consumer._acked[tp].extend([11, 12])
    assert consumer._new_offset(tp) is None
    assert not consumer._rereads  # first seen: it may just be in flight
    assert consumer._new_offset(tp) is None
    assert consumer._rereads == {tp: 10}
    consumer._acked[tp].append(10)
    assert consumer._new_offset(tp) == 13
    # nothing committed yet: the run must start at the first offset handed over
    fresh = TP("events", 1)
    consumer._first[fresh] = (consumer.app.consumer_generation_id, 0)
    consumer._acked[fresh].extend([1, 2])
    assert consumer._new_offset(fresh) is None
    consumer._acked[fresh].append(0)
    assert consumer._new_offset(fresh) == 3


def _settings(tmp_path) -> ScorerSettings:
    return ScorerSettings.model_validate(
        {
            "BATON_ENV": "test",
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "BATON_SCORER_DATA_DIR": str(tmp_path),
        }
    )
