"""``baton-sla-monitor rebuild-reports``: the reporting store rebuilt from the topics.

The store is emptied, then every retained record of the feed's topics, from the
beginning to the end each partition has when the rebuild starts, is read (no consumer
group, nothing committed) and folded in with the live feed's own code, batch by batch.
A monitor may keep running meanwhile: the fold is idempotent and commutative, so what
its feed writes during the rebuild and what the rebuild writes add up to the same
journeys. Records older than a topic's retention are gone from the rebuilt store.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from baton_shared.conversion import Fact
from baton_shared.conversion.facts import fact_topics
from baton_shared.database import make_engine, make_sessionmaker
from baton_shared.erasure_steps import open_keys
from baton_shared.kafka_connection import client_options
from baton_shared.logs import get_logger
from baton_sla_monitor.config import SlaSettings
from baton_sla_monitor.reporting import migrate_reporting
from baton_sla_monitor.reporting.feed import decode_fact
from baton_sla_monitor.reporting.store import JourneyStore

log = get_logger(__name__)

STALL_SECONDS = 60.0  # a partition that gives nothing this long before its end fails the run


async def rebuild(settings: SlaSettings) -> int:
    """Rebuild the store; how many records were folded in."""
    engine = make_engine(settings.database_url)
    try:
        await migrate_reporting(engine)
        keys = await open_keys(settings) if settings.privacy_keys is not None else None
        store = JourneyStore(make_sessionmaker(engine), keys)
        await store.clear()
        consumer = AIOKafkaConsumer(
            **client_options(settings.kafka),
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            return await _read_all(
                consumer, store, fact_topics(settings.topics), settings.consume_batch
            )
        finally:
            await consumer.stop()
            if keys is not None:
                await keys.close()
    finally:
        await engine.dispose()


async def _read_all(
    consumer: AIOKafkaConsumer, store: JourneyStore, topics: list[str], batch: int
) -> int:
    # One metadata fetch gives every topic's partitions (aiokafka has no public call).
    cluster = await consumer._client.fetch_all_metadata()
    partitions = [
        TopicPartition(topic, p)
        for topic in topics
        for p in sorted(cluster.partitions_for_topic(topic) or ())
    ]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    ends = await consumer.end_offsets(partitions)
    pending = {tp for tp in partitions if ends[tp] > 0}
    folded, last_progress = 0, time.monotonic()
    while pending:
        got = await consumer.getmany(*pending, timeout_ms=1000, max_records=batch)
        facts: list[Fact] = []
        for tp, records in got.items():
            for record in records:
                if record.offset < ends[tp]:
                    fact = decode_fact(record)
                    if fact is not None:
                        facts.append(fact)
        await store.apply(facts)
        folded += len(facts)
        for tp in list(pending):
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
                consumer.pause(tp)
        if got:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > STALL_SECONDS:
            raise RuntimeError(f"no records for {STALL_SECONDS:.0f} s before the end of {pending}")
    log.info("reporting_rebuilt", records=folded)
    return folded


def main(settings: SlaSettings) -> int:
    folded = asyncio.run(rebuild(settings))
    print(f"reporting store rebuilt from {folded} records")
    return 0
