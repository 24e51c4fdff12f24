"""Scorer settings, resolved once at start-up: where it listens (and the admin token
of its lead lookup), its rules, and how its faust worker batches, produces and keeps
its consumer group membership."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from baton_shared.settings import AdminSettings


class ScorerSettings(AdminSettings):
    host: str = Field(
        default="127.0.0.1",
        alias="BATON_SCORER_HOST",
        description="Where /healthz, /metrics and /v1/leads listen",
    )
    port: int = Field(
        default=8003, alias="BATON_SCORER_PORT", description="/healthz, /metrics and /v1/leads"
    )
    data_dir: Path = Field(
        default=Path(".devstack/scorer"),
        alias="BATON_SCORER_DATA_DIR",
        description="faust's local data directory",
    )
    store: str = Field(
        default="rocksdb://",
        pattern=r"^(rocksdb|memory)://",
        alias="BATON_SCORER_STORE",
        description="Local table store: rocksdb:// keeps state on disk across restarts (a"
        " restart reads only newer changelog records), memory:// rereads the whole changelog"
        " on every start",
    )
    cache_leads: int = Field(
        default=50_000,
        ge=1,
        alias="BATON_SCORER_CACHE_LEADS",
        description="Lead states kept in memory between batches (least recently used leave first)",
    )
    cache_account_members: int = Field(
        default=50_000,
        ge=1,
        alias="BATON_SCORER_CACHE_ACCOUNT_MEMBERS",
        description="Account states kept in memory between batches, counted by their member"
        " leads (least recently saved accounts leave first)",
    )
    standby_replicas: int = Field(
        default=1,
        ge=0,
        alias="BATON_SCORER_STANDBY_REPLICAS",
        description="Other workers that keep a warm copy of each table partition",
    )
    rules_file: Path | None = Field(
        default=None,
        alias="BATON_SCORER_RULES_FILE",
        description="Rules YAML; the shipped default rules when unset",
    )
    batch_max: int = Field(
        default=2000,
        ge=1,
        alias="BATON_SCORER_BATCH_MAX",
        description="Events per processing batch (one changelog write per lead per batch)",
    )
    batch_within_seconds: float = Field(
        default=0.25,
        gt=0,
        alias="BATON_SCORER_BATCH_WITHIN_SECONDS",
        description="Longest wait for a batch to fill before it is scored as it is",
    )
    batch_max_seconds: float = Field(
        default=0.1,
        gt=0,
        alias="BATON_SCORER_BATCH_MAX_SECONDS",
        description="About how long one chunk of a bulk batch is scored for; an express-lane"
        " event waits for at most one chunk",
    )
    timer_tick_seconds: float = Field(
        default=1.0,
        gt=0,
        alias="BATON_SCORER_TIMER_TICK_SECONDS",
        description="How often due recycle timers fire and the rules file is checked",
    )
    stream_buffer_max: int = Field(
        default=32_768,
        ge=1,
        alias="BATON_SCORER_STREAM_BUFFER_MAX",
        description="Records faust buffers per stream before it pauses fetching",
    )
    max_poll_records: int = Field(
        default=5_000,
        ge=1,
        alias="BATON_SCORER_MAX_POLL_RECORDS",
        description="Most records one fetch from Kafka returns",
    )
    commit_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        alias="BATON_SCORER_COMMIT_INTERVAL_SECONDS",
        description="How often acknowledged offsets are committed",
    )
    session_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        alias="BATON_SCORER_SESSION_TIMEOUT_SECONDS",
        description="How long a silent worker keeps its partitions (a killed one, until then)",
    )
    heartbeat_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        alias="BATON_SCORER_HEARTBEAT_INTERVAL_SECONDS",
        description="How often the worker tells the group coordinator it is alive",
    )
    producer_linger_seconds: float = Field(
        default=0.005,
        ge=0,
        alias="BATON_SCORER_PRODUCER_LINGER_SECONDS",
        description="How long the producer waits for more records to share a request",
    )
    producer_max_batch_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        alias="BATON_SCORER_PRODUCER_MAX_BATCH_BYTES",
        description="Largest record batch the producer sends to one partition, in bytes",
    )
    database_url: str = Field(
        default="postgresql://baton@127.0.0.1:5432/baton",
        alias="DATABASE_URL",
        description="PostgreSQL holding the privacy data keys (used in privacy mode only)",
    )
