"""A worker's RocksDB databases are checked against their changelogs before it starts:
one claiming records its changelog does not have (the topic was created again, the
disk came from another cluster) is deleted, so its partition is read from Kafka."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import rocksdict
from faust.stores.rocksdb import Store as RocksDBStore

from baton_scorer.local_store import discard_stores_ahead, stored_offset
from baton_shared.kafka import durable_producer, ensure_topics

pytestmark = pytest.mark.integration


def write_db(path: Path, offset: int | None, states: int = 3) -> None:
    db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))
    for n in range(states):
        db[f"lead-{n}".encode()] = b'{"stage":"mql"}'
    if offset is not None:
        db[RocksDBStore.offset_key] = str(offset).encode()
    db.close()


async def changelogs_with_records(bootstrap: str, leads: str, accounts: str) -> None:
    await ensure_topics(bootstrap, [leads, accounts], 2)
    producer = durable_producer(bootstrap)
    await producer.start()
    try:
        for n in range(3):  # leads partition 0 ends at offset 3; accounts stays empty
            await producer.send_and_wait(leads, b"{}", key=f"lead-{n}".encode(), partition=0)
    finally:
        await producer.stop()


def test_databases_ahead_of_their_changelog_are_deleted_the_others_kept(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Synchronous: the check runs before the worker, with its own event loop.
    prefix = f"ls{uuid.uuid4().hex[:8]}."
    leads, accounts = f"{prefix}leads-changelog", f"{prefix}accounts-changelog"
    asyncio.run(changelogs_with_records(kafka_bootstrap, leads, accounts))
    tables = tmp_path / "tables"
    tables.mkdir()
    write_db(tables / "leads-0.db", offset=2)  # the last record it holds: in step
    write_db(tables / "leads-1.db", offset=None)  # never written: nothing to check
    write_db(tables / "accounts-0.db", offset=7)  # the topic was created again, empty
    write_db(tables / "aliases-0.db", offset=0)  # its changelog is gone
    changelogs = {"leads": leads, "accounts": accounts, "aliases": f"{prefix}aliases-changelog"}

    discarded = discard_stores_ahead(kafka_bootstrap, tables, changelogs)

    assert sorted(p.name for p in discarded) == ["accounts-0.db", "aliases-0.db"]
    assert sorted(p.name for p in tables.iterdir()) == ["leads-0.db", "leads-1.db"]
    assert stored_offset(tables / "leads-0.db") == 2
    assert discard_stores_ahead(kafka_bootstrap, tables, changelogs) == []
