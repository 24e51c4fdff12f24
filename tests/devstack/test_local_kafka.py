"""The Kafka launcher: the session broker speaks Kafka; a restart keeps the data."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from baton_devstack import kafka_probe
from baton_devstack.kafka import LocalKafka, kafka_version
from baton_devstack.kafka_fetch import POM_PATH, ensure_kafka
from baton_devstack.ports import port_accepts
from baton_devstack.processes import pid_alive

pytestmark = pytest.mark.integration


def test_version_comes_from_the_pom() -> None:
    assert f"<kafka.version>{kafka_version()}</kafka.version>" in POM_PATH.read_text()


def test_fetch_is_cached() -> None:
    libs = ensure_kafka()
    assert (libs / f"kafka_2.13-{kafka_version()}.jar").is_file()
    assert ensure_kafka() == libs


def test_session_broker_answers_api_versions(kafka_bootstrap: str) -> None:
    host, port = kafka_bootstrap.split(",")[0].rsplit(":", 1)
    versions = kafka_probe.api_versions(host, int(port))
    assert kafka_probe.API_VERSIONS in versions
    assert kafka_probe.broker_ids(host, int(port))


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A second broker on free ports, so the session broker is left alone."""
    kafka = LocalKafka(tmp_path / "kafka")
    yield kafka
    kafka.stop()


async def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _consume_first(bootstrap: str, topic: str) -> bytes | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        record = await asyncio.wait_for(consumer.getone(), timeout=20)
        return record.value
    finally:
        await consumer.stop()


async def test_stop_start_keeps_messages(own_broker: LocalKafka, unique_name: str) -> None:
    await asyncio.to_thread(own_broker.start)
    bootstrap = own_broker.bootstrap_servers
    await _create_topic(bootstrap, unique_name)
    await _produce(bootstrap, unique_name, b"survives a restart")
    first_pid = own_broker.pid
    assert first_pid is not None

    await asyncio.to_thread(own_broker.stop)
    assert not pid_alive(first_pid)
    assert not port_accepts(own_broker.port)

    await asyncio.to_thread(own_broker.start)
    assert own_broker.bootstrap_servers == bootstrap
    assert await _consume_first(bootstrap, unique_name) == b"survives a restart"


def test_stop_from_another_launcher_object(own_broker: LocalKafka) -> None:
    """What `infra-down` does: stop a broker through its pid file, not a Popen handle."""
    own_broker.start()
    pid = own_broker.pid
    twin = LocalKafka(own_broker.workdir, own_broker.port, own_broker.controller_port)
    assert twin.pid == pid
    twin.stop()
    assert pid is not None and not pid_alive(pid)
    assert not own_broker.is_running
