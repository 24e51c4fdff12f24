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

A database that claims a changelog offset its topic has not reached (the topic was
deleted and created again, or the disk came from another cluster) holds states Kafka
no longer has: it is deleted before the worker starts (:func:`discard_stores_ahead`),
and the partition is read from the changelog instead.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP

from baton_shared.kafka import admin_client, start_client
from baton_shared.kafka_connection import KafkaConnection, client_options
from baton_shared.logs import get_logger
from baton_shared.producer import partition_for, send_batched

log = get_logger(__name__)

ROCKSDB_OPTIONS: dict[str, int] = {
    # Per table partition. Small memtables and block cache: reads mostly hit the
    # shell's own cache, and memory is sized by the lead cache, not by RocksDB.
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
}

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
    """The changelog offset a table partition's database says it holds (None: none)."""
    import rocksdict  # only with rocksdb://

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


def discard_stores_ahead(
    kafka: KafkaConnection | str, tabledir: Path, changelogs: dict[str, str]
) -> list[Path]:
    """Delete the databases under ``tabledir`` (``<table>-<partition>.db``, ``changelogs``
    naming each table's changelog topic) whose stored offset is at or past the end of
    their changelog partition, or whose changelog is gone; returns the paths deleted.
    Runs before the worker starts (it runs its own event loop)."""
    stored = {}
    for path in sorted(tabledir.glob("*.db")):
        table, _, partition = path.name.removesuffix(".db").rpartition("-")
        if table in changelogs and partition.isdigit():
            stored[path] = (TP(changelogs[table], int(partition)), stored_offset(path))
    if not stored:
        return []
    ends = asyncio.run(changelog_ends(kafka, {tp for tp, _ in stored.values()}))
    discarded = []
    for path, (tp, offset) in stored.items():
        end = ends.get(tp)
        if offset is not None and (end is None or offset >= end):
            log.warning(
                "local_store_discarded", table_db=path.name, stored_offset=offset, changelog_end=end
            )
            shutil.rmtree(path)
            discarded.append(path)
    return discarded


async def changelog_ends(kafka: KafkaConnection | str, tps: set[TP]) -> dict[TP, int]:
    """The end offsets of those of ``tps`` that exist."""
    admin = admin_client(kafka)
    await start_client(admin, kafka)
    try:
        # All topics: naming absent ones could auto-create them with broker defaults.
        described = await admin.describe_topics()
    finally:
        await admin.close()
    partitions = {
        (t["topic"], p["partition"])
        for t in described
        if not t["error_code"]
        for p in t["partitions"]
    }
    present = [tp for tp in tps if (tp.topic, tp.partition) in partitions]
    if not present:
        return {}
    consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False)
    await start_client(consumer, kafka)
    try:
        return await consumer.end_offsets(present)
    finally:
        await consumer.stop()


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


def evict(cache: dict[str, Any], keep: int) -> list[str]:
    """Drop the oldest entries of ``cache`` (insertion order) past ``keep``; their keys.
    Only saved entries are cached between batches: the store has every one dropped."""
    dropped = []
    while len(cache) > keep:
        key = next(iter(cache))
        del cache[key]
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
