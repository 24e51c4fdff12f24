"""How durable Baton's topics are made: replication, ``min.insync.replicas`` and
retention, and whether a cluster can hold them.

:class:`TopicDurabilitySettings` reads the settings (production defaults: replication 3,
``min.insync.replicas`` 2; local and test: 1 and 1, so a single broker works).
:class:`Durability` says which config each new topic gets, and
:func:`durability_problems` (pure) what a cluster lacks: fewer brokers than the
replication factor, or (in production) an existing topic replicated less.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings

from baton_shared.topics import LEADS_ACTIVITY, LEADS_EVENTS

REPLICATION = "BATON_TOPIC_REPLICATION_FACTOR"
MIN_INSYNC = "BATON_TOPIC_MIN_INSYNC_REPLICAS"
HOUR_MS = 3_600_000
# The inputs a replay (analytics, a rebuilt scorer) reads from the beginning.
REPLAY_SOURCES = (LEADS_EVENTS, LEADS_ACTIVITY)


class TopicDurabilityError(RuntimeError):
    """The cluster cannot hold the topics as configured; the message says why."""


@dataclass(frozen=True)
class Durability:
    """What every topic Baton creates gets, and how strictly a cluster is checked."""

    replication_factor: int = 1
    min_insync_replicas: int = 1
    events_retention_ms: int = 90 * 24 * HOUR_MS
    retention_ms: int = 30 * 24 * HOUR_MS
    strict: bool = False  # production: existing topics must be replicated as configured

    def topic_config(self, name: str, *, compacted: bool = False) -> dict[str, str]:
        """The config of a new topic: compacted state keeps every key's latest value;
        replay sources are kept longest."""
        config = {"min.insync.replicas": str(self.min_insync_replicas)}
        if compacted:
            config["cleanup.policy"] = "compact"
        elif name.endswith(REPLAY_SOURCES):
            config["retention.ms"] = str(self.events_retention_ms)
        else:
            config["retention.ms"] = str(self.retention_ms)
        return config


def durability_problems(
    durability: Durability, brokers: int, existing_replication: Mapping[str, int]
) -> list[str]:
    """Why a cluster of ``brokers`` with topics replicated ``existing_replication``
    (name to replication factor, for the topics Baton uses) cannot hold ``durability``."""
    wanted = durability.replication_factor
    problems = []
    if durability.min_insync_replicas > wanted:
        problems.append(
            f"{MIN_INSYNC}={durability.min_insync_replicas} is above {REPLICATION}={wanted}: "
            "no write could ever be acknowledged"
        )
    if brokers < wanted:
        problems.append(
            f"{REPLICATION}={wanted} but the cluster has {brokers} broker(s): "
            f"lower {REPLICATION} or add brokers"
        )
    if durability.strict:
        problems += [
            f"topic {name} has replication factor {rf}, below {REPLICATION}={wanted}: "
            "reassign its partitions (kafka-reassign-partitions) or lower the setting"
            for name, rf in sorted(existing_replication.items())
            if rf < wanted
        ]
    return problems


class TopicDurabilitySettings(BaseSettings):
    """Replication and retention of the topics Baton creates."""

    topic_replication_factor: int | None = Field(
        default=None,
        ge=1,
        alias=REPLICATION,
        description="Replicas of each topic Baton creates (default 3 in production, else 1)",
    )
    topic_min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        alias=MIN_INSYNC,
        description="min.insync.replicas of each topic (default 2 in production, else 1)",
    )
    events_retention_hours: float = Field(
        default=90 * 24,
        alias="BATON_EVENTS_RETENTION_HOURS",
        description="Retention of leads.events and leads.activity, read by replays (-1: forever)",
    )
    topic_retention_hours: float = Field(
        default=30 * 24,
        alias="BATON_TOPIC_RETENTION_HOURS",
        description="Retention of the other lead topics and the DLQs (-1: forever)",
    )

    def durability(self, production: bool) -> Durability:
        replication = self.topic_replication_factor or (3 if production else 1)
        min_insync = self.topic_min_insync_replicas or min(2 if production else 1, replication)
        return Durability(
            replication, min_insync, _ms(self.events_retention_hours),
            _ms(self.topic_retention_hours), strict=production,
        )  # fmt: skip


def _ms(hours: float) -> int:
    return -1 if hours < 0 else int(hours * HOUR_MS)
