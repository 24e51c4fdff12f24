"""Baton over SASL_SSL: a broker with a SASL_SSL listener (certificates made here, SCRAM
users added when its storage is formatted) carries an event from ingest to the scorer's
transition, and a wrong password or an untrusted certificate is a clear error within
seconds, not a hang. One broker for this module, next to the session's PLAINTEXT one."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from baton_devstack.kafka import LocalKafka
from baton_devstack.kafka_security import SaslSsl
from baton_devstack.ports import LOCALHOST, free_port
from baton_devstack.services import start_services, stop_services
from baton_shared.kafka import KafkaAccessError, ensure_topics
from baton_shared.kafka_connection import KafkaConnection
from tests.support.kafka import wait_for_record
from tests.support.tls import make_server_tls

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

USER, PASSWORD = "baton", "scram-test-password"
WRITE_KEY = "sasl-write-key"
CLEAR_ERROR_SECONDS = 10.0


@dataclass(frozen=True)
class SecuredKafka:
    connection: KafkaConnection
    untrusted_ca: Path  # a CA that did not sign the broker's certificate


@pytest.fixture(scope="module")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    workdir = tmp_path_factory.mktemp("kafka-sasl-ssl")
    tls = make_server_tls(workdir / "tls")
    other = make_server_tls(workdir / "other-tls", ca_name="Someone else's CA")
    listener = SaslSsl(free_port(), tls.keystore, {USER: PASSWORD})
    kafka = LocalKafka(workdir / "broker", sasl_ssl=listener, heap_max="512m")
    kafka.start()
    try:
        connection = KafkaConnection(
            f"{LOCALHOST}:{listener.port}",
            "SASL_SSL",
            "SCRAM-SHA-512",
            USER,
            PASSWORD,
            ssl_cafile=tls.ca_file,
        )
        yield SecuredKafka(connection, other.ca_file)
    finally:
        kafka.stop()


def env_of(connection: KafkaConnection) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": connection.bootstrap_servers,
        "BATON_KAFKA_SECURITY_PROTOCOL": connection.security_protocol,
        "BATON_KAFKA_SASL_MECHANISM": str(connection.sasl_mechanism),
        "BATON_KAFKA_SASL_USERNAME": str(connection.sasl_username),
        "BATON_KAFKA_SASL_PASSWORD": str(connection.sasl_password),
        "BATON_KAFKA_SSL_CAFILE": str(connection.ssl_cafile),
    }


async def refused(connection: KafkaConnection) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(KafkaAccessError) as caught:
        await ensure_topics(connection, [f"refused-{uuid.uuid4().hex[:6]}"], 1)
    return str(caught.value), time.monotonic() - started


async def test_wrong_password_is_a_clear_error_within_seconds(secured_kafka: SecuredKafka) -> None:
    wrong = replace(secured_kafka.connection, sasl_password="not-the-password")
    message, elapsed = await refused(wrong)
    assert "refused the SASL login" in message
    assert "BATON_KAFKA_SASL_PASSWORD" in message
    assert elapsed < CLEAR_ERROR_SECONDS


async def test_untrusted_certificate_is_a_clear_error_within_seconds(
    secured_kafka: SecuredKafka,
) -> None:
    untrusting = replace(secured_kafka.connection, ssl_cafile=secured_kafka.untrusted_ca)
    message, elapsed = await refused(untrusting)
    assert "certificate is not trusted (BATON_KAFKA_SSL_CAFILE)" in message
    assert elapsed < CLEAR_ERROR_SECONDS


async def test_an_event_reaches_the_scorers_transition_over_sasl_ssl(
    secured_kafka: SecuredKafka, tmp_path: Path
) -> None:
    connection = secured_kafka.connection
    prefix = f"sasl{uuid.uuid4().hex[:6]}."
    env = {
        **env_of(connection),
        "BATON_ENV": "test",
        "BATON_TOPIC_PREFIX": prefix,
        "BATON_INGEST_WRITE_KEYS": WRITE_KEY,
        "BATON_SCORER_DATA_DIR": str(tmp_path / "scorer"),
        "BATON_LOG_FORMAT": "console",
    }
    ports = {"ingest": free_port(), "scorer": free_port()}
    services = await asyncio.to_thread(
        start_services, env, tmp_path / "logs", ports, ("ingest", "scorer")
    )
    try:
        ingest = next(s for s in services if s.spec.name == "ingest")
        lead_id = f"lead-{uuid.uuid4().hex[:8]}"
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"{ingest.url}/v1/track",
                json={"userId": lead_id, "event": "Demo Requested", "messageId": lead_id},
                auth=(WRITE_KEY, ""),
            )
        assert response.status_code == 200, response.text
        seen = await wait_for_record(
            connection, f"{prefix}leads.transitions", lambda r: r["lead_id"] == lead_id
        )
        assert seen[-1]["to_stage"] == "sql"
    finally:
        await asyncio.to_thread(stop_services, services)
