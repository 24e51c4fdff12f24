"""The three nodes' configuration: one quorum, distinct ports and log dirs, internal
topics replicated like production's (no JVM started)."""

from __future__ import annotations

from pathlib import Path

from baton_devstack.kafka_cluster import KafkaCluster, with_properties


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_with_properties_replaces_in_place_and_appends_the_rest() -> None:
    text = with_properties("a=1\n# note\nb=2\n", {"b": 3, "c": "x"})
    assert text == "a=1\n# note\nb=3\nc=x\n"


def test_nodes_share_one_quorum_on_distinct_ports_and_dirs(tmp_path: Path) -> None:
    cluster = KafkaCluster(tmp_path)
    configs = [properties(node._server_properties()) for node in cluster.nodes]
    voters = {c["controller.quorum.voters"] for c in configs}
    assert len(voters) == 1 and voters.pop().count("@127.0.0.1:") == 3
    assert sorted(c["node.id"] for c in configs) == ["1", "2", "3"]
    assert len({c["listeners"] for c in configs}) == 3
    assert len({c["log.dirs"] for c in configs}) == 3
    assert len({node.cluster_id for node in cluster.nodes}) == 1
    for c in configs:
        assert c["offsets.topic.replication.factor"] == "3"
        assert c["min.insync.replicas"] == "2"
    assert cluster.bootstrap_servers.count(",") == 2
