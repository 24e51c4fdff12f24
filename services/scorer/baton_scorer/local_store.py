"""The scorer tables' local store: where a worker keeps the states it owns between
restarts, and how the shell writes to it.

With ``rocksdb://`` (faust's RocksDB store through ``rocksdict``) each table partition
is a RocksDB database under the worker's data directory that remembers the changelog
offset it holds; a restart recovers only the changelog records written after it. With
``memory://`` every start reads the whole changelog.

The shell writes a batch's records to the changelog first and, once Kafka has
acknowledged them, to the local store with their offset (:func:`write_through`): the
local store is never ahead of the changelog, so a crash in between is recovered by
reading the changelog from the offset last stored.

Each worker process claims a numbered slot directory under the data directory
(:func:`claim_slot`): a restarted worker takes the slot (and state) its predecessor
left; two workers sharing a data directory never open the same databases.

Before the worker starts, :func:`discard_stale_stores` deletes the databases recovery
would resume wrongly, so their partitions are read from the changelog instead: one that
cannot be opened, one that claims an offset its changelog has not reached (the topic
was created again, the disk came from another cluster), and one so far behind that
compaction may have dropped deletions it never saw (an erased lead would come back).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import rocksdict
from aiokafka import AIOKafkaConsumer
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP

from baton_shared.kafka import admin_client, start_client
from baton_shared.kafka_connection import KafkaConnection, client_options
from baton_shared.logs import get_logger
from baton_shared.producer import partition_for, send_batched

log = get_logger(__name__)

ROCKSDB_OPTIONS: dict[str, int] = {
    # Per table partition: at most two 16 MB memtables and a 16 MB block cache (about
    # 48 MB per database under heavy writes; docs/operations.md sizes a worker by it).
    # Small, because reads mostly hit the shell's own caches.
    "write_buffer_size": 16 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 16 * 1024 * 1024,
    "target_file_size_base": 32 * 1024 * 1024,
}

CHANGELOG_CONFIG: dict[str, str] = {
    # Compaction only cleans rolled segments: roll by size and time, clean early.
    "segment.bytes": str(64 * 1024 * 1024),
    "segment.ms": str(60 * 60 * 1000),
    "min.cleanable.dirty.ratio": "0.1",
    "max.compaction.lag.ms": str(60 * 60 * 1000),
    # A deletion (an erasure's tombstone) stays this long after compaction reaches it:
    # a local store further behind than that is discarded at start.
    "delete.retention.ms": str(7 * 24 * 60 * 60 * 1000),
}
DEFAULT_DELETE_RETENTION_MS = 24 * 60 * 60 * 1000  # Kafka's, when a topic does not say
MARGIN_MS = 60 * 60 * 1000

_held_slots: list[int] = []  # lock file descriptors, open for the life of the process


def is_persistent(store_url: str) -> bool:
    return store_url.startswith("rocksdb:")


def claim_slot(data_dir: Path, slots: int = 64) -> Path:
    """The first ``data_dir/worker-N`` whose lock no running process holds, locked by
    this one until it exits (the kernel releases the lock of a killed process too)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for n in range(slots):
        fd = os.open(data_dir / f"worker-{n}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _held_slots.append(fd)
        slot = data_dir / f"worker-{n}"
        slot.mkdir(exist_ok=True)
        return slot
    raise RuntimeError(f"all {slots} worker slots under {data_dir} are in use")


def stored_offset(db_path: Path) -> int | None:
    """The changelog offset a table partition's database says it holds (None: none).
    Raises ``Exception`` (rocksdict's) when ``db_path`` is not a readable database."""
    db = rocksdict.Rdict(
        str(db_path),
        options=rocksdict.Options(raw_mode=True),
        access_type=rocksdict.AccessType.read_only(),
    )
    try:
        offset = db.get(RocksDBStore.offset_key)
    finally:
        db.close()
    return None if offset is None else int(offset)


def discard_stale_stores(
    kafka: KafkaConnection | str, tabledir: Path, changelogs: dict[str, str]
) -> dict[str, str]:
    """Delete the databases under ``tabledir`` (``<table>-<partition>.db``, ``changelogs``
    naming each table's changelog topic) that recovery would resume wrongly; returns
    each deleted one's name and why (:func:`stale_reason`). Runs before the worker
    starts (it runs its own event loop)."""
    stored: dict[Path, tuple[TP, int | Exception | None]] = {}
    for path in sorted(tabledir.glob("*.db")):
        table, _, partition = path.name.removesuffix(".db").rpartition("-")
        if table in changelogs and partition.isdigit():
            try:
                offset: int | Exception | None = stored_offset(path)
            except Exception as exc:  # rocksdict raises plain Exception
                offset = exc
            stored[path] = (TP(changelogs[table], int(partition)), offset)
    if not stored:
        return {}
    marks = asyncio.run(changelog_marks(kafka, {tp for tp, _ in stored.values()}))
    discarded = {}
    for path, (tp, offset) in stored.items():
        reason = stale_reason(offset, marks.get(tp))
        if reason is not None:
            log.warning("local_store_discarded", table_db=path.name, reason=reason)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            discarded[path.name] = reason
    return discarded


def stale_reason(offset: int | Exception | None, marks: tuple[int, int] | None) -> str | None:
    """Why a database holding changelog ``offset`` cannot be resumed (None: it can).
    ``marks`` are its changelog partition's end offset and the first offset recent
    enough that compaction still keeps a deletion there (None: no such partition)."""
    if isinstance(offset, Exception):
        return "unreadable"
    if offset is None:
        return None  # nothing stored yet: recovery reads the changelog from its start
    if marks is None:
        return "changelog missing"
    end, recent = marks
    if offset >= end:
        return "ahead of its changelog"
    if offset + 1 < recent:
        # Records after it are old enough for compaction to have dropped deletions
        # among them: resumed, it could keep states Kafka deleted (an erasure).
        return "older than the changelog keeps deletions"
    return None


async def changelog_marks(kafka: KafkaConnection | str, tps: set[TP]) -> dict[TP, tuple[int, int]]:
    """For those of ``tps`` that exist: the end offset, and the first offset written in
    the last ``delete.retention.ms`` of the topic, less an hour's margin."""
    admin = admin_client(kafka)
    await start_client(admin, kafka)
    try:
        # All topics: naming absent ones could auto-create them with broker defaults.
        described = await admin.describe_topics()
        partitions = {
            (t["topic"], p["partition"])
            for t in described
            if not t["error_code"]
            for p in t["partitions"]
        }
        present = [tp for tp in tps if (tp.topic, tp.partition) in partitions]
        topics = sorted({tp.topic for tp in present})
        retention = await delete_retention_ms(admin, topics) if topics else {}
    finally:
        await admin.close()
    if not present:
        return {}
    now_ms = int(time.time() * 1000)
    consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False)
    await start_client(consumer, kafka)
    try:
        ends = await consumer.end_offsets(present)
        since = {tp: max(0, now_ms - retention[tp.topic] + MARGIN_MS) for tp in present}
        found = await consumer.offsets_for_times(since)
    finally:
        await consumer.stop()
    return {
        tp: (ends[tp], ends[tp] if found.get(tp) is None else found[tp].offset) for tp in present
    }


async def delete_retention_ms(admin: Any, topics: list[str]) -> dict[str, int]:
    """Each topic's ``delete.retention.ms``: how long compaction keeps a deletion."""
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, topic, configs={"delete.retention.ms": None})
        for topic in topics
    ]
    out = {}
    for response in await admin.describe_configs(resources):
        for _code, _message, _type, topic, entries in response.resources:
            for name, value, *_ in entries:
                if name == "delete.retention.ms":
                    out[topic] = int(value)
    return {topic: out.get(topic, DEFAULT_DELETE_RETENTION_MS) for topic in topics}


def table_options(store_url: str) -> dict[str, Any]:
    """The ``options`` of a faust table on ``store_url`` (RocksDB tuning, or none)."""
    return {"options": dict(ROCKSDB_OPTIONS)} if is_persistent(store_url) else {}


def _put(store: Any, partition: int, key: bytes, value: bytes) -> None:
    if hasattr(store, "_db_for_partition"):
        # faust's RocksDB store writes a key to the partition of the event being
        # processed; these writes come from whole batches, so name the partition.
        store._db_for_partition(partition).put(key, value)
        store._key_index[key] = partition
    else:
        store[key] = value


async def write_through(producer: Any, table: Any, records: list[tuple[int, bytes, bytes]]) -> None:
    """Write (partition, key, value) records to ``table``'s changelog as one record batch
    per partition, wait for Kafka, then to the local store with the offsets reached."""
    if not records:
        return
    changelog = table.changelog_topic.get_topic_name()
    results = await asyncio.gather(*await send_batched(producer, changelog, records))
    store = table.data
    for partition, key, value in records:
        _put(store, partition, key, value)
    offsets: dict[int, int] = {}
    for result in results:
        # A batch's result carries its first offset: recovery may read a batch again.
        offsets[result.partition] = max(result.offset, offsets.get(result.partition, -1))
    for partition, offset in offsets.items():
        store.set_persisted_offset(TP(changelog, partition), offset)


async def changelog_partitions(producer: Any, table: Any) -> list[int]:
    """The sorted partitions of ``table``'s changelog (its metadata fetched if need be)."""
    changelog = table.changelog_topic.get_topic_name()
    await producer.client._wait_on_metadata(changelog)
    return sorted(producer.client.cluster.partitions_for_topic(changelog))


def keyed(
    records: list[tuple[bytes, bytes]], partitions: list[int]
) -> list[tuple[int, bytes, bytes]]:
    """(key, value) records with the partition the default partitioner gives each key."""
    return [(partition_for(key, partitions), key, value) for key, value in records]


def evict(
    cache: dict[str, Any], keep: int, weight: Callable[[Any], int] | None = None
) -> list[str]:
    """Drop the oldest entries of ``cache`` (insertion order) until it holds ``keep``
    entries, or with ``weight`` until their weights add up to ``keep``; their keys.
    Only saved entries are cached between batches: the store has every one dropped."""
    total = len(cache) if weight is None else sum(map(weight, cache.values()))
    dropped = []
    while total > keep:
        key = next(iter(cache))
        value = cache.pop(key)
        total -= 1 if weight is None else weight(value)
        dropped.append(key)
    return dropped


def approximate_size(table: Any, exact_below: int = 20_000) -> int:
    """How many keys ``table`` holds locally: exact in memory and for small RocksDB
    tables, RocksDB's estimate past ``exact_below`` (counting means reading them all)."""
    store = table.data
    dbs = getattr(store, "_dbs", None)
    if dbs is None:
        return len(table)
    total = 0
    for db in list(dbs.values()):
        estimate = db.property_int_value("rocksdb.estimate-num-keys")
        total += int(estimate or 0)
    return len(table) if total < exact_below else total


def scan(table: Any) -> Iterator[tuple[bytes, bytes]]:
    """The (key, value) items of ``table``'s active partitions, lazily: RocksDB
    iterators read a snapshot; in memory the keys are taken once, values as reached."""
    store = table.data
    if getattr(store, "_dbs", None) is not None:
        for db in list(store._dbs_for_actives()):  # the databases open now
            yield from store._visible_items(db)
        return
    for key in list(store.keys()):
        value = store.get(key)
        if value is not None:
            yield key, value
