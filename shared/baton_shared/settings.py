"""Settings shared by every service, read once from the environment at start-up.

Each service subclasses :class:`ServiceSettings` with its own fields. Outside
local mode (``BATON_ENV`` other than ``local``) the unsafe development defaults
are refused, so a production deployment cannot start with a demo secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from baton_shared.kafka_connection import KafkaConnection, KafkaConnectionSettings
from baton_shared.privacy.settings import PrivacySettings
from baton_shared.topic_durability import Durability, TopicDurabilitySettings
from baton_shared.topics import Topics

LOCAL_ADMIN_TOKEN = "local-admin-token"


class ServiceSettings(KafkaConnectionSettings, TopicDurabilitySettings, PrivacySettings):
    """What every Baton service needs: where Kafka is and how to connect to it, its
    namespace and how its topics are replicated, logging, and privacy mode."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    env: Literal["local", "test", "production"] = Field(default="local", alias="BATON_ENV")
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", alias="KAFKA_BOOTSTRAP_SERVERS")
    topic_prefix: str = Field(default="", alias="BATON_TOPIC_PREFIX")
    topic_partitions: int = Field(default=3, ge=1, alias="BATON_TOPIC_PARTITIONS")
    log_level: str = Field(default="INFO", alias="BATON_LOG_LEVEL")
    log_format: Literal["json", "console"] = Field(default="json", alias="BATON_LOG_FORMAT")
    log_hash_key_secret: SecretStr | None = Field(
        default=None,
        alias="BATON_LOG_HASH_KEY",
        description="Keys the hash that names leads in logs (default: from BATON_ADMIN_TOKEN)",
    )
    auth_max_failures: int = Field(
        default=20,
        ge=0,
        alias="BATON_AUTH_MAX_FAILURES",
        description="Failed authentications per client address and window before a 429 (0: off)",
    )
    auth_failure_window_seconds: float = Field(
        default=60, gt=0, alias="BATON_AUTH_FAILURE_WINDOW_SECONDS"
    )
    auth_limit_clients: int = Field(
        default=10_000,
        ge=1,
        alias="BATON_AUTH_LIMIT_CLIENTS",
        description="Client addresses whose failures are remembered (least recent forgotten)",
    )

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def kafka(self) -> KafkaConnection:
        """Where Kafka is and how every client of this service connects to it."""
        return self.kafka_connection(self.kafka_bootstrap_servers)

    @property
    def topic_durability(self) -> Durability:
        """Replication and retention of new topics; checked strictly in production."""
        return self.durability(production=self.env == "production")

    @property
    def log_hash_key(self) -> bytes:
        """The key of the hash naming leads in logs: ``BATON_LOG_HASH_KEY``, else derived
        from the service's admin token (the same in every service sharing it), else (a
        service without a secret) random for this process."""
        if self.log_hash_key_secret is not None:
            return self.log_hash_key_secret.get_secret_value().encode()
        admin_token = getattr(self, "admin_token", None)
        if isinstance(admin_token, str):
            return hmac.new(admin_token.encode(), b"baton-log-hash", hashlib.sha256).digest()
        return secrets.token_bytes(32)

    @property
    def is_local(self) -> bool:
        return self.env in ("local", "test")


def to_asyncpg_url(url: str) -> str:
    """Accept the usual ``postgresql://`` form and give SQLAlchemy's asyncpg dialect URL."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(
        f"DATABASE_URL must be a postgresql:// URL, got scheme of {url.split(':')[0]!r}"
    )


class AdminSettings(ServiceSettings):
    """A service with an admin API behind ``Authorization: Bearer <BATON_ADMIN_TOKEN>``."""

    admin_token: str = Field(
        default=LOCAL_ADMIN_TOKEN,
        alias="BATON_ADMIN_TOKEN",
        min_length=16,
        description="The admin API's bearer token; the local default is refused elsewhere",
    )

    @model_validator(mode="after")
    def _refuse_local_secrets_outside_local(self) -> AdminSettings:
        if not self.is_local and self.admin_token == LOCAL_ADMIN_TOKEN:
            raise ValueError("BATON_ADMIN_TOKEN must be set to a secret outside BATON_ENV=local")
        return self


class DatabaseSettings(AdminSettings):
    """A service that keeps state in PostgreSQL."""

    database_url: str = Field(
        default="postgresql://baton@127.0.0.1:5432/baton", alias="DATABASE_URL"
    )

    @property
    def sqlalchemy_url(self) -> str:
        return to_asyncpg_url(self.database_url)
