"""Reading a bounded range of topics without disturbing anyone.

The reader belongs to no group: it fetches the partitions itself, at offsets it keeps,
commits nothing and never joins a consumer group, so the live services' groups, their
offsets and their partition assignment are untouched however long an analyst reads.
The end of the range is fixed when reading starts (the high-water mark, or the first
offset at ``until``), so a read over a live topic always terminates.

aiokafka's consumer gives the metadata and the offsets; the records themselves are
fetched with Fetch requests sent through its client, and each record set is read in
Rust when the compiled core is built (``baton_scorer_native.read_record_set``: message
format v2 without compression), else, and for any other set, with aiokafka's
record-batch reader (C). The consumer's own fetching is not used: it builds a
``ConsumerRecord`` per record in Python, and a range read needs none of what it adds
(no group, no positions to commit, no rebalancing).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

from baton_analytics.ranges import ReadRange
from baton_shared.kafka_connection import KafkaConnection, as_connection, client_options

try:
    import baton_scorer_native as _native
except ImportError:  # not built here
    _native = None

# Plain (v2, uncompressed) record sets read, and time-order keys computed, in Rust when
# the compiled core is built; else the Python below does each.
read_record_set = getattr(_native, "read_record_set", None)
time_order_keys = getattr(_native, "time_order_keys", None)

log = logging.getLogger(__name__)

# Fetches of about a megabyte per partition: the next one arrives while a batch is
# processed, and buffers stay small.
PARTITION_FETCH_BYTES = 1024 * 1024
FETCH_MAX_BYTES = 16 * 1024 * 1024
FETCH_MAX_WAIT_MS = 500
# aiokafka's default isolation level. No Baton producer writes transactions; a topic
# that had aborted ones would show their records here, where the router and the SLA
# monitor (read_committed) never saw them.
READ_UNCOMMITTED = 0
# A partition that makes no progress for this long (its leader gone, its log truncated
# below the range's end) fails the read with a message instead of hanging it.
STALL_SECONDS = 60.0
RETRY_BACKOFF_SECONDS = 0.2


class SourceError(RuntimeError):
    """The broker or topic cannot be read as asked; the message says what is missing."""


class Fetched(NamedTuple):
    """A record of the range: where it is in the log, and its key and value."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # milliseconds since the epoch, as the producer (or broker) set it
    key: bytes | None
    value: bytes | None


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
        kafka: KafkaConnection | str,
        topics: list[str],
        span: ReadRange,
        optional: tuple[str, ...] = (),
    ) -> None:
        self.kafka = as_connection(kafka)
        self.bootstrap = self.kafka.bootstrap_servers
        self.topics = topics
        self.optional = optional  # read when they exist, else skipped
        self.span = span
        self.spans: list[PartitionSpan] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._fetch: _Fetch | None = None

    @property
    def total(self) -> int:
        return sum(s.size for s in self.spans)

    async def open(self) -> None:
        # Metadata and offsets only: it is assigned nothing, so it fetches nothing.
        consumer = AIOKafkaConsumer(
            **client_options(self.kafka),
            group_id=None,
            enable_auto_commit=False,
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
            self.spans = await self._spans(consumer, partitions)
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

    async def batches(self) -> AsyncIterator[list[Fetched]]:
        """Every record in the range, a fetch at a time, then stop."""
        async for fetched in self.partition_batches():
            yield [r for records in fetched.values() for r in records]

    async def partition_batches(self) -> AsyncIterator[dict[TopicPartition, list[Fetched]]]:
        """Every record in the range, a fetch at a time, by partition (each in offset order).

        While the caller works on one fetch, the next one is already on its way.
        :meth:`finished` tells which partitions have been read to their end.
        """
        assert self._consumer is not None, "open() first"
        fetch = self._fetch = _Fetch(self._consumer, [s for s in self.spans if s.size])
        while fetch.positions:
            fetch.send()
            out = await fetch.receive()
            if out:
                yield out

    def finished(self, tp: TopicPartition) -> bool:
        """Whether the range of ``tp`` has been read to its end (or was empty)."""
        return self._fetch is not None and tp not in self._fetch.positions

    async def close(self) -> None:
        if self._fetch is not None:
            self._fetch.cancel()  # a fetch in flight when the caller stopped early
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def __aenter__(self) -> TopicReader:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


Asked = dict[TopicPartition, int]  # the offsets one Fetch request asked for
Response = tuple[Asked, Any]  # a Fetch response, or the error that stopped it


class _Fetch:
    """The fetch loop of one read: a position per partition, a Fetch request per leader.

    The next round of requests goes out as soon as a round's records are taken, before
    the caller works on them.
    """

    def __init__(self, consumer: AIOKafkaConsumer, spans: list[PartitionSpan]) -> None:
        self.consumer = consumer
        self.client: AIOKafkaClient = consumer._client
        self.ends = {s.partition: s.end for s in spans}
        self.positions = {s.partition: s.start for s in spans}  # next offset to read
        now = time.monotonic()
        self.moved_at = dict.fromkeys(self.positions, now)
        self.high_water: dict[TopicPartition, int] = {}
        self.last_error: dict[TopicPartition, Exception] = {}
        self.rounds = 0
        self.led: set[TopicPartition] = set()
        self.pending: asyncio.Future[list[Response]] | None = None

    def send(self) -> None:
        """The next round of requests, unless one is in flight already."""
        if self.pending is not None:
            return
        # A response holds at most FETCH_MAX_BYTES: the broker fills it in the order
        # asked, so each round starts at another partition, and none waits behind others.
        order = list(self.positions.items())
        turn = self.rounds % len(order)
        self.rounds += 1
        by_node: dict[int, Asked] = {}
        for tp, offset in order[turn:] + order[:turn]:
            node = self.client.cluster.leader_for_partition(tp)
            by_node.setdefault(-1 if node is None else node, {})[tp] = offset
        self.led = {next(iter(asked)) for asked in by_node.values()}  # first in a request
        self.pending = asyncio.ensure_future(
            asyncio.gather(*(self._request(node, asked) for node, asked in by_node.items()))
        )

    def cancel(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
            self.pending = None

    async def _request(self, node: int, asked: Asked) -> Response:
        if node == -1:  # no known leader (being elected, or metadata is stale)
            return asked, kafka_errors.LeaderNotAvailableError()
        topics: dict[str, list[tuple[int, int, int]]] = {}
        for tp, offset in asked.items():
            topics.setdefault(tp.topic, []).append((tp.partition, offset, PARTITION_FETCH_BYTES))
        request = FetchRequest(
            FETCH_MAX_WAIT_MS, 1, FETCH_MAX_BYTES, READ_UNCOMMITTED, list(topics.items())
        )
        try:
            return asked, await self.client.send(node, request)
        except kafka_errors.KafkaError as exc:  # connection lost, timed out: retried
            return asked, exc

    async def receive(self) -> dict[TopicPartition, list[Fetched]]:
        """The records of the round in flight, and the next round sent."""
        assert self.pending is not None, "send() first"
        responses = await self.pending
        self.pending = None
        out: dict[TopicPartition, list[Fetched]] = {}
        failed: list[tuple[TopicPartition, Exception]] = []
        for asked, response in responses:
            if isinstance(response, Exception):
                failed += [(tp, response) for tp in asked]
                continue
            for topic, partitions in response.topics:
                for partition, error_code, high_water, *data in partitions:
                    tp = TopicPartition(topic, partition)
                    if tp not in asked or self.positions.get(tp) != asked[tp]:
                        continue
                    if error_code:
                        failed.append((tp, kafka_errors.for_code(error_code)()))
                        continue
                    self.high_water[tp] = high_water
                    records = self._read(tp, data[-1])  # the record set is the last field
                    if records:
                        out[tp] = records
        if failed:
            await self._failed(failed)
        self._check_progress()
        if self.positions:
            self.send()
        return out

    def _read(self, tp: TopicPartition, raw: bytes) -> list[Fetched]:
        """The range's records in one partition's fetched record set; moves its position.

        A set can end inside a batch (the response was full): that batch comes whole in
        a later round, when this partition is asked first (brokers return the first
        batch whole, however large).
        """
        start, end = self.positions[tp], self.ends[tp]
        fast = None
        if read_record_set is not None:
            fast = read_record_set(raw, tp.topic, tp.partition, start, end, Fetched)
        got, position = fast if fast is not None else _read_general(tp, raw, start, end)
        self._moved(tp, position)
        if raw and tp in self.positions and tp not in self.led:
            # A batch cut off because the response was full: this partition waits for its
            # turn at the head of a request (a batch that comes cut off there does stall).
            self.moved_at[tp] = time.monotonic()
        return got

    def _moved(self, tp: TopicPartition, position: int) -> None:
        if position <= self.positions[tp]:
            return
        if position >= self.ends[tp]:
            del self.positions[tp]
        else:
            self.positions[tp] = position
            self.moved_at[tp] = time.monotonic()
            self.last_error.pop(tp, None)

    async def _failed(self, failed: list[tuple[TopicPartition, Exception]]) -> None:
        """Partitions a round could not read: skip records deleted meanwhile, or retry
        (one metadata refresh and one backoff per round), or fail."""
        refresh = False
        for tp, error in failed:
            where = f"{tp.topic} partition {tp.partition} at offset {self.positions[tp]}"
            if isinstance(error, kafka_errors.OffsetOutOfRangeError):
                first = (await self.consumer.beginning_offsets([tp]))[tp]
                if first <= self.positions[tp]:
                    raise SourceError(
                        f"{where}: the log was truncated below the range being read"
                    ) from error
                # Deleted by retention while the range was read: say so, read the rest.
                log.warning("%s: records up to %d were deleted while reading", where, first - 1)
                self._moved(tp, first)
                continue
            if not getattr(error, "retriable", False):
                raise SourceError(f"cannot read {where}: {error!r}") from error
            log.info("retrying %s after %r", where, error)
            self.last_error[tp] = error
            refresh = True  # the leader may have moved: ask again where each partition is
        if refresh:
            await self.client.force_metadata_update()
        if any(tp in self.positions for tp, _ in failed):
            await asyncio.sleep(RETRY_BACKOFF_SECONDS)

    def _check_progress(self) -> None:
        now = time.monotonic()
        for tp, position in self.positions.items():
            if now - self.moved_at[tp] <= STALL_SECONDS:
                continue
            end, high_water = self.ends[tp], self.high_water.get(tp)
            if tp in self.last_error:
                why = f"the last error: {self.last_error[tp]!r}"
            elif high_water is not None and high_water <= position:
                why = f"the log now ends at offset {high_water}"
            else:
                why = "is its leader available?"
            raise SourceError(
                f"{tp.topic} partition {tp.partition} gave no records at offset {position} "
                f"for {STALL_SECONDS:.0f} s, though the range ends at {end}: {why}"
            )


def _read_general(
    tp: TopicPartition, raw: bytes, start: int, end: int
) -> tuple[list[Fetched], int]:
    """The records of ``[start, end)`` in the record set ``raw``, and the offset to fetch
    next: any message format and compression, with aiokafka's reader (C)."""
    topic, partition = tp
    position = start
    got: list[Fetched] = []
    append, new = got.append, tuple.__new__
    records = MemoryRecords(raw)
    while position < end and records.has_next():
        batch = records.next_batch()
        if batch is None:  # the fetch ended inside a batch: the next fetch reads it
            break
        if not batch.validate_crc():
            raise SourceError(
                f"corrupt record batch in {topic} partition {partition} after offset "
                f"{position} (CRC mismatch); the broker's copy may be damaged"
            )
        if getattr(batch, "is_control_batch", False):  # transaction markers
            pass
        elif getattr(batch, "magic", 0) >= 2:
            for r in batch:
                offset = r.offset
                if offset < start:  # a batch can begin before the position
                    continue
                if offset >= end:
                    break
                append(new(Fetched, (topic, partition, offset, r.timestamp, r.key, r.value)))
        else:  # message format v0/v1 (before Kafka 0.11): timestamps may be absent
            for r in batch:
                if start <= r.offset < end:
                    ts = r.timestamp if r.timestamp is not None else -1
                    append(Fetched(topic, partition, r.offset, ts, r.key, r.value))
        position = batch.next_offset
    return got, position


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
        self.buffer: list[tuple[int, Fetched]] = []

    def feed(self, tp: TopicPartition, records: list[Fetched]) -> None:
        """``records`` of partition ``tp``, following the ones fed before."""
        if not records:
            return
        n, rank = len(self.rank), self.rank[tp]
        high = self.high.get(tp, records[0].timestamp)
        if time_order_keys is not None and isinstance(records, list):
            keyed = time_order_keys(records, self.buffer, high, n, rank)
            if keyed is not None:
                self.high[tp], self.last_key[tp] = keyed
                return
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

    def ready(self) -> list[Fetched]:
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

    def rest(self) -> list[Fetched]:
        self.open.clear()
        return self.ready()


def _first(entry: tuple[int, Fetched]) -> int:
    return entry[0]


async def in_time_order(reader: TopicReader) -> AsyncIterator[list[Fetched]]:
    """The reader's records in :class:`TimeOrder`, in batches."""
    if sum(1 for s in reader.spans if s.size) <= 1:
        async for batch in reader.batches():  # one partition: offset order is the order
            yield batch
        return
    order = TimeOrder([s.partition for s in reader.spans])
    async for fetched in reader.partition_batches():
        for tp, records in fetched.items():
            order.feed(tp, records)
        for tp in [tp for tp in order.open if reader.finished(tp)]:
            order.done(tp)  # read to its end (its last offsets may be markers, or deleted)
        released = order.ready()
        if released:
            yield released
    rest = order.rest()
    if rest:
        yield rest
