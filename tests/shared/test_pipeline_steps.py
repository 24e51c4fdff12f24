"""The consume pipeline's steps without a broker: decode or dead-letter, handle a batch
(a poison record split out to the DLQ, an outage waited out), commit in order and last,
and the next batch fetched only once the previous one is handled."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition
from prometheus_client import REGISTRY

from baton_shared.pipeline import ConsumePipeline, RetryPolicy, each
from baton_shared.pipeline.commit import CommitStep
from baton_shared.pipeline.decode import DecodeStep
from baton_shared.pipeline.handle import HandleStep
from tests.support.waiting import wait_until

FAST = RetryPolicy(max_attempts=2, backoff_seconds=0.001, max_backoff_seconds=0.002)
TOPIC = "leads.things"


def record(offset: int, value: bytes, partition: int = 0) -> ConsumerRecord:
    return ConsumerRecord(
        TOPIC, partition, offset, 0, 0, b"key", value, None, 3, len(value), []
    )


def records(*values: object) -> list[ConsumerRecord]:
    return [record(n, orjson.dumps(v)) for n, v in enumerate(values)]


def decode_number(r: ConsumerRecord) -> int | None:
    value = orjson.loads(r.value)  # not JSON: ValueError, to the DLQ
    if value is None:
        return None
    if not isinstance(value, int):
        raise ValueError(f"not a number: {value!r}")
    return value


def counted(consumer: str, outcome: str) -> float:
    labels = {"consumer": consumer, "outcome": outcome}
    return REGISTRY.get_sample_value("baton_consumer_records_total", labels) or 0.0


class Letters:
    """An in-memory dead-letter queue: what was parked, with the error."""

    def __init__(self) -> None:
        self.parked: list[tuple[int, str]] = []

    async def put(self, r: ConsumerRecord, error: BaseException) -> None:
        self.parked.append((r.offset, f"{type(error).__name__}: {error}"))


async def test_decode_parks_what_does_not_decode_and_skips_what_is_not_ours() -> None:
    letters = Letters()
    decode = DecodeStep(decode_number, letters, "decode-test")  # type: ignore[arg-type]
    batch = [*records(1, "two", None, 4), record(4, b"not json")]

    decoded = await decode(batch)

    assert [item for _, item in decoded] == [1, 4]
    assert [r.offset for r, _ in decoded] == [0, 3]
    assert [offset for offset, _ in letters.parked] == [1, 4]
    assert "not a number: 'two'" in letters.parked[0][1]


class Handler:
    """Fails every batch that holds ``poison``; records what it made durable."""

    def __init__(self, poison: int | None = None, outage: int = 0) -> None:
        self.poison = poison
        self.outage = outage  # the first calls meet a database that is down
        self.calls: list[list[int]] = []
        self.durable: list[int] = []

    async def __call__(self, items: list[int]) -> None:
        self.calls.append(list(items))
        if self.outage:
            self.outage -= 1
            raise ConnectionRefusedError(111, "connection refused")
        if self.poison in items:
            raise OverflowError("date value out of range")
        self.durable.extend(items)


def decoded(*items: int) -> list[tuple[ConsumerRecord, int]]:
    return list(zip(records(*items), items, strict=True))


async def test_a_poison_record_goes_to_the_dlq_and_the_rest_of_its_batch_is_handled() -> None:
    handler, letters = Handler(poison=3), Letters()
    step = HandleStep(handler, letters, "handle-poison", FAST)  # type: ignore[arg-type]

    await step(decoded(1, 2, 3, 4))

    assert handler.durable == [1, 2, 4]
    assert letters.parked == [(2, "OverflowError: date value out of range")]
    # Two tries of the batch, then each record alone; the poison one twice.
    assert handler.calls == [[1, 2, 3, 4], [1, 2, 3, 4], [1], [2], [3], [3], [4]]
    assert counted("handle-poison", "processed") == 3


async def test_a_database_outage_stalls_the_batch_and_never_dead_letters() -> None:
    handler, letters = Handler(outage=10), Letters()
    step = HandleStep(handler, letters, "handle-outage", FAST)  # type: ignore[arg-type]

    await step(decoded(1, 2))

    assert handler.durable == [1, 2]
    assert letters.parked == []
    assert len(handler.calls) == 11


async def test_each_hands_items_over_one_by_one_in_order() -> None:
    seen: list[int] = []

    async def one(item: int) -> None:
        seen.append(item)

    await each(one)([3, 1, 2])

    assert seen == [3, 1, 2]


class Broker:
    """Stands in for the consumer and producer in these unit tests: hands out the given
    batches, then waits; records commits and DLQ writes."""

    def __init__(self, batches: Sequence[list[ConsumerRecord]]) -> None:
        self.batches = list(batches)
        self.log: list[str] = []
        self.letters: list[tuple[str, bytes]] = []
        self.drained = asyncio.Event()

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        if not self.batches:
            self.drained.set()
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        batch = self.batches.pop(0)
        self.log.append(f"fetch {[r.offset for r in batch]}")
        return {TopicPartition(TOPIC, 0): batch}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await asyncio.sleep(0.01)
        self.log.append(f"commit {offsets[TopicPartition(TOPIC, 0)]}")

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.letters.append((topic, value))


async def test_pipeline_handles_before_fetching_more_and_commits_last_in_order() -> None:
    all_records = records(1, 2, "x", 3)
    broker = Broker([all_records[:2], all_records[2:]])

    async def handle(items: list[int]) -> None:
        broker.log.append(f"handle {items}")

    pipeline = ConsumePipeline(
        broker,  # type: ignore[arg-type]
        broker,  # type: ignore[arg-type]
        "pipeline-test",
        decode_number,
        handle,
        retry=FAST,
        max_records=2,
        after_batch=lambda: broker.log.append("after"),
    )
    running = asyncio.create_task(pipeline.run())
    await asyncio.wait_for(broker.drained.wait(), 5)

    async def last_commit_landed() -> bool:
        return "commit 4" in broker.log  # in flight while the loop polled again

    await wait_until(last_commit_landed, "the second commit")
    running.cancel()

    assert broker.log == [
        "fetch [0, 1]",
        "handle [1, 2]",
        "after",
        "fetch [2, 3]",
        "handle [3]",
        "after",
        "commit 2",  # batch 1's commit overlapped batch 2, and lands before batch 2's
        "commit 4",
    ]
    [(topic, letter)] = broker.letters
    assert topic == f"{TOPIC}.dlq"
    assert orjson.loads(letter)["offset"] == 2
    assert counted("pipeline-test", "dead_letter") == 1


class FailingCommits:
    def __init__(self) -> None:
        self.tries = 0

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.tries += 1
        raise RuntimeError("rebalance in progress")


async def test_a_failed_commit_is_logged_and_consumption_goes_on() -> None:
    consumer = FailingCommits()
    commit = CommitStep(consumer, "commit-test")  # type: ignore[arg-type]

    await commit.submit({TopicPartition(TOPIC, 0): 1})
    await commit.submit({TopicPartition(TOPIC, 0): 2})
    await commit.join()

    assert consumer.tries == 2


@pytest.mark.parametrize("value", [b"\xff\xfe", b"[1,"])
async def test_undecodable_bytes_are_poison(value: bytes) -> None:
    letters = Letters()
    step = DecodeStep(decode_number, letters, "decode-bytes")  # type: ignore[arg-type]

    assert await step([record(0, value)]) == []
    assert [offset for offset, _ in letters.parked] == [0]
