"""A three-node KRaft Kafka cluster on 127.0.0.1, for failover tests and local trials.

Each node is a :class:`~baton_devstack.kafka.LocalKafka` (combined broker and
controller) with its own node id, ports and workdir; the three controllers form the
quorum, and the internal topics are replicated like a production cluster's (3 copies,
``min.insync.replicas`` 2), so one node can be SIGKILLed and restarted while clients
carry on. Layout of a workdir::

    node-1/   node-2/   node-3/      each a LocalKafka workdir (server.properties, data/)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from baton_devstack.kafka import START_TIMEOUT, STOP_TIMEOUT, LocalKafka, _cluster_id
from baton_devstack.ports import LOCALHOST

__all__ = ["ClusterNode", "KafkaCluster"]

log = logging.getLogger(__name__)

SIZE = 3
HEAP_MAX = "512m"


def with_properties(properties: str, overrides: Mapping[str, object]) -> str:
    """``properties`` with each key of ``overrides`` set (replaced in place, else added)."""
    lines = [
        f"{key}={overrides[key]}" if key in overrides else line
        for line in properties.splitlines()
        for key in [line.partition("=")[0]]
    ]
    present = {line.partition("=")[0] for line in properties.splitlines()}
    lines += [f"{key}={value}" for key, value in overrides.items() if key not in present]
    return "\n".join(lines) + "\n"


class ClusterNode(LocalKafka):
    """One broker+controller of a :class:`KafkaCluster`; ``voters`` names the quorum."""

    def __init__(
        self, workdir: Path, node_id: int, cluster_id: str, voters: Callable[[], str], size: int
    ) -> None:
        super().__init__(workdir, heap_max=HEAP_MAX)
        self.node_id = node_id
        self.cluster_id = cluster_id
        self._voters = voters
        self._size = size

    def _server_properties(self) -> str:
        replicas, min_isr = self._size, min(2, self._size)
        return with_properties(
            super()._server_properties(),
            {
                "controller.quorum.voters": self._voters(),
                "offsets.topic.replication.factor": replicas,
                "transaction.state.log.replication.factor": replicas,
                "transaction.state.log.min.isr": min_isr,
                "share.coordinator.state.topic.replication.factor": replicas,
                "share.coordinator.state.topic.min.isr": min_isr,
                "default.replication.factor": replicas,
                "min.insync.replicas": min_isr,
            },
        )


class KafkaCluster:
    """``size`` KRaft nodes in ``workdir``, started and stopped as a unit.

    The nodes start together (a controller only becomes ready once a majority of the
    quorum runs). A single node can be crashed (``node(i).kill()``) and brought back
    (``node(i).start()``) on the same ports and data, rejoining the cluster.
    """

    def __init__(self, workdir: Path, size: int = SIZE) -> None:
        self.workdir = Path(workdir).resolve()
        cluster_id = _cluster_id()
        self.nodes = [
            ClusterNode(self.workdir / f"node-{i}", i, cluster_id, self._voters, size)
            for i in range(1, size + 1)
        ]

    @property
    def bootstrap_servers(self) -> str:
        """Every node's address, comma-separated."""
        return ",".join(node.bootstrap_servers for node in self.nodes)

    def node(self, node_id: int) -> ClusterNode:
        return next(node for node in self.nodes if node.node_id == node_id)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start every node and wait until each serves; on failure, stop them all."""
        try:
            self._each(lambda node: node.start(timeout))
        except BaseException:
            self.stop()
            raise
        log.info("Kafka cluster of %d ready on %s", len(self.nodes), self.bootstrap_servers)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop every node (SIGTERM, then SIGKILL after ``timeout`` s); data is kept."""
        self._each(lambda node: node.stop(timeout))

    def __enter__(self) -> KafkaCluster:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _voters(self) -> str:
        return ",".join(f"{n.node_id}@{LOCALHOST}:{n.controller_port}" for n in self.nodes)

    def _each(self, action: Callable[[ClusterNode], None]) -> None:
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            for future in [pool.submit(action, node) for node in self.nodes]:
                future.result()
