"""Kafka helpers: a durable producer, topic creation, a readiness probe, DLQ writes.

Each takes a :class:`~baton_shared.kafka_connection.KafkaConnection` (or a plain
PLAINTEXT bootstrap string). A client that cannot connect because of its security
settings fails with :class:`KafkaAccessError` saying which, instead of aiokafka's
bare "Unable to bootstrap".
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.structs import ConsumerRecord

from baton_shared.kafka_connection import (
    CAFILE,
    CERTFILE,
    MECHANISM,
    PASSWORD,
    USERNAME,
    KafkaConnection,
    as_connection,
    client_options,
)
from baton_shared.schemas import DeadLetter
from baton_shared.topic_durability import Durability, TopicDurabilityError, durability_problems
from baton_shared.topics import dlq

TOPIC_ALREADY_EXISTS = 36


class KafkaAccessError(ConnectionError):
    """The cluster refused this client's TLS or SASL credentials (message says which)."""


def durable_producer(kafka: KafkaConnection | str, **overrides: object) -> AIOKafkaProducer:
    """A producer whose acknowledged writes survive a broker crash.

    aiokafka defaults to ``acks=1`` without idempotence; Baton answers callers
    only after ``acks=all`` from an idempotent producer, so a retried send can
    neither be lost nor duplicated in the log.
    """
    options: dict[str, object] = {
        **client_options(kafka),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "request_timeout_ms": 10_000,
        "client_id": "baton",
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)  # type: ignore[arg-type]


def admin_client(kafka: KafkaConnection | str, request_timeout_ms: int = 10_000) -> Any:
    return AIOKafkaAdminClient(**client_options(kafka), request_timeout_ms=request_timeout_ms)


async def start_client(client: Any, kafka: KafkaConnection | str) -> None:
    """``client.start()``; a refused TLS certificate or SASL login raises
    :class:`KafkaAccessError` naming the setting to check."""
    try:
        await client.start()
    except KafkaConnectionError as exc:
        reason = await access_problem(as_connection(kafka))
        if reason is not None:
            raise KafkaAccessError(reason) from exc
        raise


async def access_problem(conn: KafkaConnection, timeout_s: float = 5.0) -> str | None:
    """Why the first bootstrap server refuses ``conn``'s credentials (None: it does not,
    or it cannot be reached at all)."""
    host, _, port = conn.bootstrap_servers.split(",")[0].strip().rpartition(":")
    options = client_options(conn)
    del options["bootstrap_servers"]
    try:
        link = await asyncio.wait_for(
            create_conn(host, int(port), request_timeout_ms=int(timeout_s * 1000), **options),
            timeout_s,
        )
    except ssl.SSLCertVerificationError as exc:
        return f"the broker's TLS certificate is not trusted ({CAFILE}): {exc.verify_message}"
    except ssl.SSLError as exc:
        return f"the TLS handshake with the broker failed ({CAFILE}, {CERTFILE}): {exc}"
    except KafkaError as exc:
        if "SASL" in type(exc).__name__ or "authentication" in str(exc).lower():
            names = f"{USERNAME}, {PASSWORD}, {MECHANISM}"
            return f"the broker refused the SASL login ({names}): {type(exc).__name__} {exc}"
        return None
    except (OSError, TimeoutError):
        return None
    link.close()
    return None


async def ensure_topics(
    kafka: KafkaConnection | str,
    names: Iterable[str],
    partitions: int,
    durability: Durability | None = None,
    *,
    compacted: bool = False,
    config: Mapping[str, str] | None = None,
) -> None:
    """Create the topics that do not exist yet, with ``durability``'s replication and
    config (and ``config`` over it); existing ones are left as they are. Raises
    :class:`TopicDurabilityError` when the cluster cannot hold ``durability`` (see
    :func:`~baton_shared.topic_durability.durability_problems`)."""
    durability = durability or Durability()
    names = list(names)
    admin = admin_client(kafka)
    await start_client(admin, kafka)
    try:
        brokers = len((await admin.describe_cluster())["brokers"])
        # All topics: naming absent ones could auto-create them with broker defaults.
        described = await admin.describe_topics()
        existing = {t["topic"]: t for t in described if t["topic"] in names}
        replication = {name: _replication(t) for name, t in existing.items()}
        problems = durability_problems(durability, brokers, replication)
        if problems:
            raise TopicDurabilityError("Kafka cannot hold Baton's topics: " + "; ".join(problems))
        wanted = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=durability.replication_factor,
                topic_configs=durability.topic_config(name, compacted=compacted)
                | dict(config or {}),
            )
            for name in names
            if name not in existing
        ]
        if wanted:
            _raise_topic_errors(await admin.create_topics(wanted))
    finally:
        await admin.close()


def _replication(topic: dict[str, Any]) -> int:
    return min((len(p["replicas"]) for p in topic["partitions"]), default=0)


def _raise_topic_errors(response: Any) -> None:
    """CreateTopics answers per topic; one that already exists (another instance
    created it first) is fine, any other error is not."""
    errors = [
        f"{name}: {message or code}"
        for name, code, *rest in response.topic_errors
        for message in [rest[0] if rest else None]
        if code not in (0, TOPIC_ALREADY_EXISTS)
    ]
    if errors:
        raise TopicDurabilityError("Kafka refused to create topics: " + "; ".join(errors))


async def kafka_answers(kafka: KafkaConnection | str, timeout_s: float = 2.0) -> bool:
    """True when the cluster answers a metadata request within ``timeout_s``."""
    admin = admin_client(kafka, request_timeout_ms=2_000)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
        return True
    except Exception:
        return False
    finally:
        try:
            await admin.close()
        except Exception:
            pass


async def send_to_dlq(
    producer: AIOKafkaProducer, record: ConsumerRecord, error: str, consumer: str
) -> None:
    """Park a record that could not be processed on its topic's DLQ, with the reason."""
    raw = record.value if isinstance(record.value, bytes) else b""
    letter = DeadLetter(
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode("utf-8", "replace") if record.key else None,
        value=raw.decode("utf-8", "replace"),
        error=error[:2000],
        consumer=consumer,
        failed_at=datetime.now(UTC),
    )
    await producer.send_and_wait(dlq(record.topic), letter.to_bytes(), key=record.key)
