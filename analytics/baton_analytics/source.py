"""Reading a bounded range of topics without disturbing anyone.

The consumer has no group (``group_id=None``): it assigns partitions itself, commits
nothing and never joins a consumer group, so the live services' groups, their
offsets and their partition assignment are untouched however long an analyst reads.
The end of the range is fixed when reading starts (the high-water mark, or the first
offset at ``until``), so a read over a live topic always terminates.
"""

from __future__ import annotations

import bisect
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from baton_analytics.ranges import ReadRange

# Fetches of about a megabyte per partition: the next one arrives while a batch is
# processed, and buffers stay small. 16 MiB per partition was slower by wall clock and
# took about a third more CPU per record (bench/replay, read only).
PARTITION_FETCH_BYTES = 1024 * 1024
FETCH_MAX_BYTES = 16 * 1024 * 1024


class SourceError(RuntimeError):
    """The broker or topic cannot be read as asked; the message says what is missing."""


@dataclass(frozen=True)
class PartitionSpan:
    partition: TopicPartition
    start: int
    end: int  # exclusive

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


class TopicReader:
    """Reads ``topics`` over ``span`` in batches: ``async for batch in reader.batches()``.

    ``total`` (records in the range, known after :meth:`open`) feeds progress and ETA.
    Records of one partition come in offset order; use :func:`in_time_order` for a
    single order across partitions and topics.
    """

    def __init__(
        self,
        bootstrap: str,
        topics: list[str],
        span: ReadRange,
        optional: tuple[str, ...] = (),
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.optional = optional  # read when they exist, else skipped
        self.span = span
        self.spans: list[PartitionSpan] = []
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def total(self) -> int:
        return sum(s.size for s in self.spans)

    async def open(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_bytes=FETCH_MAX_BYTES,
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            request_timeout_ms=30_000,
            client_id="baton-analytics",
        )
        try:
            await consumer.start()
        except Exception as exc:
            await consumer.stop()
            raise SourceError(f"cannot reach Kafka at {self.bootstrap}: {exc}") from exc
        self._consumer = consumer
        try:
            # One metadata fetch gives names and partitions (``topics()`` keeps only names).
            cluster = await consumer._client.fetch_all_metadata()
            existing = cluster.topics()
            partitions: list[TopicPartition] = []
            for topic in self.topics:
                if topic not in existing and topic in self.optional:
                    continue
                if topic not in existing:
                    raise SourceError(
                        f"topic {topic!r} does not exist on {self.bootstrap} "
                        "(check the name and BATON_TOPIC_PREFIX / --prefix)"
                    )
                ids = cluster.partitions_for_topic(topic) or set()
                partitions += [TopicPartition(topic, p) for p in sorted(ids)]
            consumer.assign(partitions)
            self.spans = await self._spans(consumer, partitions)
            for s in self.spans:
                consumer.seek(s.partition, s.start)
        except BaseException:
            await self.close()
            raise

    async def _spans(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
    ) -> list[PartitionSpan]:
        first = await consumer.beginning_offsets(partitions)
        last = await consumer.end_offsets(partitions)
        starts, ends = dict(first), dict(last)
        r = self.span
        if r.since is not None:
            at = await consumer.offsets_for_times(
                {tp: int(r.since.timestamp() * 1000) for tp in partitions}
            )
            starts = {tp: (at[tp].offset if at[tp] else last[tp]) for tp in partitions}
        if r.until is not None:
            at = await consumer.offsets_for_times(
                {tp: int(r.until.timestamp() * 1000) for tp in partitions}
            )
            ends = {tp: (at[tp].offset if at[tp] else last[tp]) for tp in partitions}
        if r.from_offset is not None:
            starts = {tp: max(first[tp], r.from_offset) for tp in partitions}
        if r.to_offset is not None:
            ends = {tp: min(last[tp], r.to_offset) for tp in partitions}
        return [PartitionSpan(tp, starts[tp], max(starts[tp], ends[tp])) for tp in partitions]

    async def batches(self) -> AsyncIterator[list[ConsumerRecord]]:
        """Every record in the range, a fetched batch at a time, then stop."""
        async for fetched in self.partition_batches():
            yield [r for records in fetched.values() for r in records]

    async def partition_batches(
        self,
    ) -> AsyncIterator[dict[TopicPartition, list[ConsumerRecord]]]:
        """Every record in the range, a fetch at a time, by partition (each in offset order)."""
        consumer = self._consumer
        assert consumer is not None, "open() first"
        ends = {s.partition: s.end for s in self.spans}
        pending = {tp for tp, end in ends.items() if end > self._start_of(tp)}
        if not pending:
            return
        consumer.pause(*[tp for tp in ends if tp not in pending])
        while pending:
            fetched = await consumer.getmany(timeout_ms=500)
            out: dict[TopicPartition, list[ConsumerRecord]] = {}
            for tp, records in fetched.items():
                end = ends[tp]
                if records and records[-1].offset >= end:
                    records = [r for r in records if r.offset < end]
                if records:
                    out[tp] = records
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
                    consumer.pause(tp)
            if out:
                yield out

    def _start_of(self, tp: TopicPartition) -> int:
        return next(s.start for s in self.spans if s.partition == tp)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def __aenter__(self) -> TopicReader:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class TimeOrder:
    """Merges the records of several partitions into one order: Kafka timestamp, then
    topic, partition and offset — the order the live services most likely saw them.

    It is the k-way merge that always takes the smallest of the partitions' next
    records. A partition's timestamps need not rise (producers set them), so that merge
    is computed as a sort on each record's *effective key*: the largest key of its
    partition up to and including it. Effective keys rise within a partition and differ
    between partitions, so sorting on them gives the same order as taking heads, and
    whole batches can be sorted at once instead of a record at a time.

    Feed it each partition's records in offset order; :meth:`ready` releases every
    record no partition still being read can precede (each partition's next records
    have effective keys at least its last one's), so memory stays bounded by fetch skew.
    """

    def __init__(self, partitions: list[TopicPartition]) -> None:
        ordered = sorted(partitions, key=lambda tp: (tp.topic, tp.partition))
        self.rank = {tp: i for i, tp in enumerate(ordered)}
        self.open = set(partitions)
        self.high: dict[TopicPartition, int] = {}  # largest timestamp seen, per partition
        self.last_key: dict[TopicPartition, int] = {}
        self.buffer: list[tuple[int, ConsumerRecord]] = []

    def feed(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        """``records`` of partition ``tp``, following the ones fed before."""
        if not records:
            return
        n, rank = len(self.rank), self.rank[tp]
        high = self.high.get(tp, records[0].timestamp)
        append = self.buffer.append
        key = 0
        for r in records:
            if r.timestamp > high:
                high = r.timestamp
            # (effective timestamp, partition rank, offset) as one int: cheap to sort.
            key = ((high * n + rank) << 63) + r.offset
            append((key, r))
        self.high[tp] = high
        self.last_key[tp] = key

    def done(self, tp: TopicPartition) -> None:
        self.open.discard(tp)

    def ready(self) -> list[ConsumerRecord]:
        """Records safe to release now, in order."""
        if not self.buffer:
            return []
        if any(tp not in self.last_key for tp in self.open):
            return []  # an open partition not read yet may deliver anything first
        buffer = self.buffer
        buffer.sort(key=_first)
        if not self.open:
            self.buffer = []
            return [r for _, r in buffer]
        horizon = min(self.last_key[tp] for tp in self.open)
        cut = bisect.bisect_right(buffer, horizon, key=_first)
        self.buffer = buffer[cut:]
        return [r for _, r in buffer[:cut]]

    def rest(self) -> list[ConsumerRecord]:
        self.open.clear()
        return self.ready()


def _first(entry: tuple[int, ConsumerRecord]) -> int:
    return entry[0]


async def in_time_order(reader: TopicReader) -> AsyncIterator[list[ConsumerRecord]]:
    """The reader's records in :class:`TimeOrder`, in batches."""
    if sum(1 for s in reader.spans if s.size) <= 1:
        async for batch in reader.batches():  # one partition: offset order is the order
            yield batch
        return
    order = TimeOrder([s.partition for s in reader.spans])
    last_offset = {s.partition: s.end - 1 for s in reader.spans}
    for s in reader.spans:
        if s.size == 0:
            order.done(s.partition)
    async for fetched in reader.partition_batches():
        for tp, records in fetched.items():
            order.feed(tp, records)
            if records[-1].offset >= last_offset[tp]:
                order.done(tp)
        released = order.ready()
        if released:
            yield released
    rest = order.rest()
    if rest:
        yield rest
