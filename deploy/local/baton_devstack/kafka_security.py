"""A SASL_SSL listener for the local broker, next to its PLAINTEXT one.

The broker presents ``keystore`` (one PEM file: its private key, unencrypted PKCS#8,
then its certificate chain) and accepts SCRAM-SHA-256 and SCRAM-SHA-512 logins of
``users``, which ``kafka-storage format --add-scram`` writes into the metadata log
before the broker's first start. The PLAINTEXT listener stays for the broker itself
(controller and readiness probes); clients under test use :attr:`SaslSsl.port`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
_SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


@dataclass(frozen=True)
class SaslSsl:
    """Where the SASL_SSL listener listens, the broker's key and certificate, and the
    SCRAM users (name to password) it accepts."""

    port: int
    keystore: Path
    users: Mapping[str, str] = field(default_factory=dict)

    def server_properties(self, properties: str, host: str) -> str:
        """``properties`` (a PLAINTEXT broker's) with the SASL_SSL listener added."""
        listener = f"SASL_SSL://{host}:{self.port}"
        lines = []
        for line in properties.splitlines():
            key, _, value = line.partition("=")
            if key in ("listeners", "advertised.listeners"):
                line = f"{key}={value},{listener}"
            elif key == "listener.security.protocol.map":
                line = f"{key}={value},SASL_SSL:SASL_SSL"
            lines.append(line)
        lines += [
            f"sasl.enabled.mechanisms={','.join(MECHANISMS)}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.keystore}",
            *(
                f"listener.name.sasl_ssl.{m.lower()}.sasl.jaas.config={_SCRAM_MODULE}"
                for m in MECHANISMS
            ),
        ]
        return "\n".join(lines) + "\n"

    def format_args(self) -> list[str]:
        """``kafka-storage format`` arguments that create the SCRAM users."""
        return [
            f"--add-scram={mechanism}=[name={name},password={password}]"
            for name, password in self.users.items()
            for mechanism in MECHANISMS
        ]
