"""The Kafka consumer a service feeds to :class:`baton_shared.pipeline.ConsumePipeline`,
and a check its decode functions share."""

from __future__ import annotations

import re

from aiokafka import AIOKafkaConsumer

from baton_shared.kafka_connection import KafkaConnection, client_options


def make_consumer(kafka: KafkaConnection | str, group_id: str, *topics: str) -> AIOKafkaConsumer:
    """A group member that commits only what the pipeline tells it to, and reads only
    committed transactional records."""
    return AIOKafkaConsumer(
        *topics,
        **client_options(kafka),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        client_id=group_id,
    )


_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def refuse_nul(raw: bytes | None) -> None:
    """PostgreSQL's text and JSONB cannot hold a NUL character: a JSON record with one
    (``\\u0000`` in a string) is poison for a consumer that stores it, not a batch to
    retry forever. Raises ValueError (to the DLQ) naming the problem."""
    if raw and b"\\u0000" in raw and _NUL_ESCAPE.search(raw):
        raise ValueError(
            "a string contains a NUL character (\\u0000), which PostgreSQL cannot store"
        )
