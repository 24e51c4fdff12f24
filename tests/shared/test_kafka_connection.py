"""One set of Kafka connection settings for every client: invalid combinations fail at
start-up naming the setting; valid ones become aiokafka options and faust credentials;
topics get the configured replication, and a cluster that cannot hold it is refused."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from pathlib import Path

import faust
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from pydantic import ValidationError

from baton_shared.kafka import ensure_topics
from baton_shared.kafka_connection import KafkaConnection, client_options, faust_credentials
from baton_shared.settings import ServiceSettings
from baton_shared.topic_durability import Durability, TopicDurabilityError, durability_problems

SASL = {
    "BATON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "BATON_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "BATON_KAFKA_SASL_USERNAME": "baton",
    "BATON_KAFKA_SASL_PASSWORD": "s3cret",
}


PRODUCTION = {"BATON_ENV": "production", "BATON_PRIVACY_KEY": "p" * 32}


def refusal(**env: str) -> str:
    with pytest.raises(ValidationError) as caught:
        ServiceSettings(**env)
    return str(caught.value)


def test_plaintext_is_the_default_and_needs_nothing() -> None:
    options = client_options(ServiceSettings(KAFKA_BOOTSTRAP_SERVERS="k:9092").kafka)
    assert options == {"bootstrap_servers": "k:9092", "security_protocol": "PLAINTEXT"}
    assert faust_credentials("k:9092") is None


def test_sasl_without_credentials_names_each_missing_setting() -> None:
    message = refusal(BATON_KAFKA_SECURITY_PROTOCOL="SASL_SSL")
    for name in SASL:
        if name != "BATON_KAFKA_SECURITY_PROTOCOL":
            assert f"{name} must be set" in message


def test_credentials_on_a_protocol_that_does_not_use_them_are_refused() -> None:
    assert "BATON_KAFKA_SASL_PASSWORD is set but" in refusal(BATON_KAFKA_SASL_PASSWORD="x")
    message = refusal(BATON_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", **{
        **{k: v for k, v in SASL.items() if k != "BATON_KAFKA_SECURITY_PROTOCOL"},
        "BATON_KAFKA_SSL_CAFILE": "/etc/ssl/ca.pem",
    })  # fmt: skip
    assert "BATON_KAFKA_SSL_CAFILE is set but" in message


def test_unknown_protocol_or_mechanism_is_refused_by_name() -> None:
    assert "BATON_KAFKA_SECURITY_PROTOCOL" in refusal(BATON_KAFKA_SECURITY_PROTOCOL="TLS")
    assert "BATON_KAFKA_SASL_MECHANISM" in refusal(**{**SASL, "BATON_KAFKA_SASL_MECHANISM": "MD5"})


def test_missing_or_unreadable_tls_files_are_refused_at_startup(tmp_path: Path) -> None:
    missing = tmp_path / "absent.pem"
    assert f"BATON_KAFKA_SSL_CAFILE={missing} is not a readable file" in refusal(
        BATON_KAFKA_SECURITY_PROTOCOL="SSL", BATON_KAFKA_SSL_CAFILE=str(missing)
    )
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate")
    message = refusal(BATON_KAFKA_SECURITY_PROTOCOL="SSL", BATON_KAFKA_SSL_CAFILE=str(garbage))
    assert "cannot load the TLS files of BATON_KAFKA_SSL_CAFILE" in message
    key_only = refusal(BATON_KAFKA_SECURITY_PROTOCOL="SSL", BATON_KAFKA_SSL_KEYFILE=str(garbage))
    assert "BATON_KAFKA_SSL_KEYFILE is set without BATON_KAFKA_SSL_CERTFILE" in key_only


def test_sasl_ssl_gives_aiokafka_options_and_faust_credentials() -> None:
    conn = ServiceSettings(KAFKA_BOOTSTRAP_SERVERS="k:9093", **SASL).kafka
    options = client_options(conn)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("baton", "s3cret")
    assert isinstance(options["ssl_context"], ssl.SSLContext)  # system CAs
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    credentials = faust_credentials(conn)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert "s3cret" not in repr(conn)


def test_ssl_alone_gives_faust_ssl_credentials() -> None:
    credentials = faust_credentials(KafkaConnection("k:9093", "SSL"))
    assert isinstance(credentials, faust.SSLCredentials)


def test_production_defaults_to_three_replicas_and_two_in_sync() -> None:
    production = ServiceSettings(**PRODUCTION).topic_durability
    assert (production.replication_factor, production.min_insync_replicas) == (3, 2)
    assert production.strict
    local = ServiceSettings().topic_durability
    assert (local.replication_factor, local.min_insync_replicas, local.strict) == (1, 1, False)


def test_replay_sources_are_kept_longest_and_state_is_compacted() -> None:
    durability = ServiceSettings(BATON_EVENTS_RETENTION_HOURS=-1).topic_durability
    assert durability.topic_config("p.leads.events")["retention.ms"] == "-1"
    assert durability.topic_config("p.leads.events.dlq")["retention.ms"] == str(30 * 86_400_000)
    rules = durability.topic_config("scorer.rules", compacted=True)
    assert rules == {"min.insync.replicas": "1", "cleanup.policy": "compact"}


def test_a_cluster_that_cannot_hold_the_topics_is_described() -> None:
    wanted = Durability(replication_factor=3, min_insync_replicas=2, strict=True)
    assert durability_problems(wanted, 3, {"leads.events": 3}) == []
    (few_brokers,) = durability_problems(wanted, 1, {})
    assert "BATON_TOPIC_REPLICATION_FACTOR=3 but the cluster has 1 broker(s)" in few_brokers
    (thin_topic,) = durability_problems(wanted, 3, {"leads.events": 1, "leads.sla": 3})
    assert "topic leads.events has replication factor 1" in thin_topic
    relaxed = Durability(replication_factor=3, min_insync_replicas=2, strict=False)
    assert durability_problems(relaxed, 3, {"leads.events": 1}) == []
    (impossible,) = durability_problems(Durability(2, 3), 3, {})
    assert "BATON_TOPIC_MIN_INSYNC_REPLICAS=3 is above" in impossible


async def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, None)]
        )
        [(_, _, _, _, entries)] = response.resources
        return {entry[0]: entry[1] for entry in entries}
    finally:
        await admin.close()


def test_three_replicas_on_the_one_broker_test_cluster_is_refused(kafka_bootstrap: str) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}.leads.events"
    production = ServiceSettings(**PRODUCTION).topic_durability
    with pytest.raises(TopicDurabilityError, match="has 1 broker"):
        asyncio.run(ensure_topics(kafka_bootstrap, [name], 1, production))
    local = ServiceSettings(BATON_EVENTS_RETENTION_HOURS=48).topic_durability
    asyncio.run(ensure_topics(kafka_bootstrap, [name], 1, local))  # local: created
    config = asyncio.run(topic_config(kafka_bootstrap, name))
    assert config["min.insync.replicas"] == "1"
    assert config["retention.ms"] == str(48 * 3_600_000)
    thin = Durability(replication_factor=1, strict=True)
    asyncio.run(ensure_topics(kafka_bootstrap, [name], 1, thin))  # exists as wanted: fine
