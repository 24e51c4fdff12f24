"""The three-broker KRaft cluster the failover tests run on (one per module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from baton_devstack.kafka_cluster import KafkaCluster


@pytest.fixture(scope="module")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    with KafkaCluster(tmp_path_factory.mktemp("kafka-cluster")) as cluster:
        yield cluster
