"""A worker's RocksDB databases are checked against their changelogs before it starts:
one recovery would resume wrongly is deleted, so its partition is read from Kafka."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
import rocksdict
from faust.stores.rocksdb import Store as RocksDBStore

from baton_scorer.local_store import discard_stale_stores, stored_offset
from baton_shared.kafka import durable_producer, ensure_topics

pytestmark = pytest.mark.integration

DAY_MS = 24 * 60 * 60 * 1000


def write_db(path: Path, offset: int | None, states: int = 3) -> None:
    db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))
    for n in range(states):
        db[f"lead-{n}".encode()] = b'{"stage":"mql"}'
    if offset is not None:
        db[RocksDBStore.offset_key] = str(offset).encode()
    db.close()


async def changelogs_with_records(bootstrap: str, leads: str, aliases: str, accounts: str) -> None:
    """``leads``: partition 0 has three records from two days ago then two from now,
    partition 1 two old then one new (deletions kept Kafka's default 24 h); ``aliases``
    the same as partition 1, deletions kept three days; ``accounts`` stays empty."""
    await ensure_topics(bootstrap, [leads, accounts], 4)
    await ensure_topics(bootstrap, [aliases], 1, config={"delete.retention.ms": str(3 * DAY_MS)})
    producer = durable_producer(bootstrap)
    await producer.start()
    old = int(time.time() * 1000) - 2 * DAY_MS
    try:
        for topic, partition, olds, news in [
            (leads, 0, 3, 2),
            (leads, 1, 2, 1),
            (aliases, 0, 2, 1),
        ]:
            for n in range(olds + news):
                await producer.send_and_wait(
                    topic, b"{}", partition=partition, timestamp_ms=old if n < olds else None
                )
    finally:
        await producer.stop()


def test_databases_recovery_would_resume_wrongly_are_deleted_the_others_kept(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Synchronous: the check runs before the worker, with its own event loop.
    prefix = f"ls{uuid.uuid4().hex[:8]}."
    changelogs = {name: f"{prefix}{name}-changelog" for name in ("leads", "aliases", "accounts")}
    asyncio.run(changelogs_with_records(kafka_bootstrap, *changelogs.values()))
    changelogs["gone"] = f"{prefix}gone-changelog"  # never created
    tables = tmp_path / "tables"
    tables.mkdir()
    write_db(tables / "leads-0.db", offset=3)  # holds the old records: in step
    write_db(tables / "leads-1.db", offset=0)  # misses an old record: maybe a deletion
    (tables / "leads-2.db").mkdir()  # a database never finished
    write_db(tables / "leads-3.db", offset=None)  # never written: read from the start
    write_db(tables / "accounts-0.db", offset=7)  # the topic was created again, empty
    write_db(tables / "aliases-0.db", offset=0)  # misses an old record, deletions kept
    write_db(tables / "gone-0.db", offset=0)  # its changelog is gone

    discarded = discard_stale_stores(kafka_bootstrap, tables, changelogs)

    assert discarded == {
        "accounts-0.db": "ahead of its changelog",
        "gone-0.db": "changelog missing",
        "leads-1.db": "older than the changelog keeps deletions",
        "leads-2.db": "unreadable",
    }
    assert sorted(p.name for p in tables.iterdir()) == ["aliases-0.db", "leads-0.db", "leads-3.db"]
    assert stored_offset(tables / "leads-0.db") == 3
    assert discard_stale_stores(kafka_bootstrap, tables, changelogs) == {}
