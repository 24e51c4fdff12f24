"""How every Baton Kafka client connects: one set of settings, one place that turns it
into client options.

:class:`KafkaConnectionSettings` reads ``BATON_KAFKA_SECURITY_PROTOCOL`` and its
companions; :class:`KafkaConnection` is the resolved, validated result (an invalid
combination fails at start-up with an error naming the setting to fix).
:func:`client_options` gives the keyword arguments of an aiokafka producer, consumer
or admin client, and :func:`faust_credentials` faust's ``broker_credentials``.
Anything that takes a connection also takes a plain bootstrap string (PLAINTEXT).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

from aiokafka.helpers import create_ssl_context
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

PROTOCOL = "BATON_KAFKA_SECURITY_PROTOCOL"
MECHANISM = "BATON_KAFKA_SASL_MECHANISM"
USERNAME = "BATON_KAFKA_SASL_USERNAME"
PASSWORD = "BATON_KAFKA_SASL_PASSWORD"
CAFILE = "BATON_KAFKA_SSL_CAFILE"
CERTFILE = "BATON_KAFKA_SSL_CERTFILE"
KEYFILE = "BATON_KAFKA_SSL_KEYFILE"


class KafkaSettingsError(ValueError):
    """The Kafka connection settings cannot work together; the message names the setting."""


@dataclass(frozen=True)
class KafkaConnection:
    """Where the cluster is and how to authenticate to it (validated when built)."""

    bootstrap_servers: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    def __post_init__(self) -> None:
        problems = connection_problems(self)
        if problems:
            raise KafkaSettingsError("; ".join(problems))

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (verifying the broker; the client certificate when given)."""
        if not self.uses_tls:
            return None
        return _ssl_context(self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile)


def connection_problems(conn: KafkaConnection) -> list[str]:
    """Every reason ``conn`` cannot work, each naming the setting to change."""
    if conn.security_protocol not in get_args(SecurityProtocol):
        allowed = ", ".join(get_args(SecurityProtocol))
        return [f"{PROTOCOL}={conn.security_protocol!r} is not one of {allowed}"]
    protocol = f"{PROTOCOL}={conn.security_protocol}"
    sasl = {MECHANISM: conn.sasl_mechanism, USERNAME: conn.sasl_username,
            PASSWORD: conn.sasl_password}  # fmt: skip
    files = {CAFILE: conn.ssl_cafile, CERTFILE: conn.ssl_certfile, KEYFILE: conn.ssl_keyfile}
    problems = []
    if conn.uses_sasl:
        problems += [f"{name} must be set with {protocol}" for name, v in sasl.items() if not v]
        if conn.sasl_mechanism and conn.sasl_mechanism not in get_args(SaslMechanism):
            allowed = ", ".join(get_args(SaslMechanism))
            problems.append(f"{MECHANISM}={conn.sasl_mechanism!r} is not one of {allowed}")
    else:
        problems += [
            f"{name} is set but {protocol} does not use SASL (SASL_SSL or SASL_PLAINTEXT does)"
            for name, value in sasl.items()
            if value
        ]
    if not conn.uses_tls:
        problems += [
            f"{name} is set but {protocol} does not use TLS (SSL or SASL_SSL does)"
            for name, value in files.items()
            if value
        ]
    elif conn.ssl_keyfile and not conn.ssl_certfile:
        problems.append(f"{KEYFILE} is set without {CERTFILE} (the client certificate)")
    problems += [
        f"{name}={path} is not a readable file"
        for name, path in files.items()
        if path and conn.uses_tls and not Path(path).is_file()
    ]
    return problems


@lru_cache(maxsize=8)
def _ssl_context(
    cafile: Path | None, certfile: Path | None, keyfile: Path | None
) -> ssl.SSLContext:
    try:
        return create_ssl_context(cafile=cafile, certfile=certfile, keyfile=keyfile)
    except (ssl.SSLError, OSError) as exc:
        names = ", ".join(n for n, p in ((CAFILE, cafile), (CERTFILE, certfile),
                                         (KEYFILE, keyfile)) if p)  # fmt: skip
        raise KafkaSettingsError(f"cannot load the TLS files of {names}: {exc}") from exc


def as_connection(kafka: KafkaConnection | str) -> KafkaConnection:
    """A plain bootstrap string is a PLAINTEXT connection."""
    return KafkaConnection(kafka) if isinstance(kafka, str) else kafka


def client_options(kafka: KafkaConnection | str) -> dict[str, Any]:
    """``bootstrap_servers`` and the security keyword arguments of an aiokafka client."""
    conn = as_connection(kafka)
    options: dict[str, Any] = {
        "bootstrap_servers": conn.bootstrap_servers,
        "security_protocol": conn.security_protocol,
    }
    if conn.uses_tls:
        options["ssl_context"] = conn.ssl_context()
    if conn.uses_sasl:
        options["sasl_mechanism"] = conn.sasl_mechanism
        options["sasl_plain_username"] = conn.sasl_username
        options["sasl_plain_password"] = conn.sasl_password
    return options


def faust_credentials(kafka: KafkaConnection | str) -> Any:
    """faust's ``broker_credentials`` for ``kafka`` (None for PLAINTEXT)."""
    import faust  # only the scorer has faust installed

    conn = as_connection(kafka)
    if conn.uses_sasl:
        return faust.SASLCredentials(
            username=conn.sasl_username,
            password=conn.sasl_password,
            mechanism=conn.sasl_mechanism,
            ssl_context=conn.ssl_context(),
        )
    if conn.uses_tls:
        return faust.SSLCredentials(conn.ssl_context())
    return None


class KafkaConnectionSettings(BaseSettings):
    """The security settings of every Kafka client; checked together at start-up."""

    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        alias=PROTOCOL,
        description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        default=None, alias=MECHANISM, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
    )
    kafka_sasl_username: str | None = Field(default=None, alias=USERNAME)
    kafka_sasl_password: SecretStr | None = Field(default=None, alias=PASSWORD)
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        alias=CAFILE,
        description="CA bundle (PEM) the broker's certificate is checked against",
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, alias=CERTFILE, description="Client certificate (PEM), for mutual TLS"
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, alias=KEYFILE, description="The client certificate's private key (PEM)"
    )

    def kafka_connection(self, bootstrap_servers: str) -> KafkaConnection:
        password = self.kafka_sasl_password
        return KafkaConnection(
            bootstrap_servers,
            self.kafka_security_protocol,
            self.kafka_sasl_mechanism,
            self.kafka_sasl_username,
            password.get_secret_value() if password is not None else None,
            self.kafka_ssl_cafile,
            self.kafka_ssl_certfile,
            self.kafka_ssl_keyfile,
        )

    @model_validator(mode="after")
    def _connection_works(self) -> KafkaConnectionSettings:
        self.kafka_connection("unused:9092").ssl_context()  # raises naming the setting
        return self
