"""Where replayed transitions go: a JSON-lines file or a sandbox topic, never the live one."""

from __future__ import annotations

from pathlib import Path

from aiokafka.errors import KafkaError

from baton_shared.kafka import durable_producer, ensure_topics
from baton_shared.kafka_connection import KafkaConnection, as_connection
from baton_shared.schemas import Transition
from baton_shared.topic_durability import Durability
from baton_shared.topics import LEADS_TRANSITIONS, Topics


class SinkError(ValueError):
    """The output asked for is not allowed or cannot be written."""


def check_sandbox_topic(name: str, topics: Topics) -> None:
    """Refuse any name that is, or looks like, a live ``leads.transitions`` topic.

    The router and the SLA monitor act on every record there: a replayed transition
    on it would assign real leads to real reps.
    """
    if not name.strip():
        raise SinkError("--to-topic needs a topic name")
    if name in (topics.transitions, LEADS_TRANSITIONS) or name.endswith("." + LEADS_TRANSITIONS):
        raise SinkError(
            f"refusing to write replayed transitions to {name!r}: that is a live "
            f"{LEADS_TRANSITIONS} topic (the router assigns reps from it); "
            "choose a sandbox name such as sandbox.transitions"
        )


def write_jsonl(transitions: list[Transition], path: Path) -> None:
    try:
        with path.open("wb") as f:
            for t in transitions:
                f.write(t.to_bytes() + b"\n")
    except OSError as exc:
        raise SinkError(f"cannot write {path}: {exc}") from exc


async def publish(
    transitions: list[Transition],
    bootstrap: KafkaConnection | str,
    topic: str,
    partitions: int,
    durability: Durability | None = None,
) -> None:
    """Produce every transition (keyed by lead id) and wait for Kafka's acknowledgement."""
    producer = durable_producer(bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    try:
        await ensure_topics(bootstrap, [topic], partitions, durability)
        await producer.start()
        try:
            batch = [
                await producer.send(topic, t.to_bytes(), key=t.lead_id.encode())
                for t in transitions
            ]
            for future in batch:
                await future
        finally:
            await producer.stop()
    except KafkaError as exc:
        where = as_connection(bootstrap).bootstrap_servers
        raise SinkError(f"cannot write to topic {topic!r} on {where}: {exc}") from exc
