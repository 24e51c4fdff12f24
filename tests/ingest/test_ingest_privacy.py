"""Minimised at the door: IP addresses truncated (/24, /48) and user agents dropped
before an event reaches Kafka, by default in production."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from baton_ingest.config import IngestSettings
from baton_ingest.minimise import Minimisation, minimised, truncated_ip
from baton_ingest.records import EventRecord
from baton_shared.privacy import KeyStore, open_event
from tests.ingest.test_ingest_api import KEY, client_for, settings_for
from tests.support.kafka import wait_for_record

AGENT = "Mozilla/5.0 (X11; Linux x86_64) Grace/1.0"
PRIVACY = {"BATON_PRIVACY_KEY": "minimisation-privacy-key-for-tests"}  # required in production


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
        (" 198.51.100.250 ", "198.51.100.0"),
        ("not an address", None),
    ],
)
def test_an_ip_keeps_only_its_network(given: str, kept: str | None) -> None:
    assert truncated_ip(given) == kept


def record(**fields: Any) -> EventRecord:
    base: dict[str, Any] = {
        "ip": None,
        "user_agent": None,
        "context": {},
        "properties": {},
        "lead_id": "lead-1",
    }
    return base | fields  # type: ignore[return-value]


def test_every_copy_of_the_ip_and_user_agent_in_an_event_is_minimised() -> None:
    raw = record(
        ip="203.0.113.77",
        user_agent=AGENT,
        context={"ip": "203.0.113.77", "userAgent": AGENT, "locale": "en-GB"},
        properties={"ip": "2001:db8:1:2::9", "useragent": AGENT, "sendgrid_event": "open"},
    )
    kept = minimised(raw, Minimisation(truncate_ip=True, drop_user_agent=True))
    assert kept["ip"] == "203.0.113.0" and kept["user_agent"] is None
    assert kept["context"] == {"ip": "203.0.113.0", "locale": "en-GB"}
    assert kept["properties"] == {"ip": "2001:db8:1::", "sendgrid_event": "open"}
    assert raw["context"]["ip"] == "203.0.113.77"  # the caller's record is not changed
    assert minimised(raw, Minimisation(False, False)) is raw


@pytest.mark.parametrize(
    ("env", "overrides", "expected"),
    [
        ("production", {}, Minimisation(truncate_ip=True, drop_user_agent=True)),
        ("test", {}, Minimisation(truncate_ip=False, drop_user_agent=False)),
        (
            "production",
            {"BATON_INGEST_DROP_USER_AGENT": "false"},
            Minimisation(truncate_ip=True, drop_user_agent=False),
        ),
        (
            "local",
            {"BATON_INGEST_IP_TRUNCATE": "true"},
            Minimisation(truncate_ip=True, drop_user_agent=False),
        ),
    ],
)
def test_minimisation_is_on_by_default_in_production_only(
    env: str, overrides: dict[str, str], expected: Minimisation
) -> None:
    settings = IngestSettings(
        **{"BATON_ENV": env, "BATON_INGEST_WRITE_KEYS": "site-key", **PRIVACY, **overrides}  # type: ignore[arg-type]
    )
    assert settings.minimisation == expected


@pytest.mark.integration
async def test_in_production_the_published_event_has_no_full_ip_or_user_agent(
    kafka_bootstrap: str, unique_name: str, database_url: str
) -> None:
    prefix = f"{unique_name}."
    settings = settings_for(
        kafka_bootstrap,
        prefix,
        BATON_ENV="production",
        BATON_TOPIC_REPLICATION_FACTOR="1",  # the test broker is one broker
        BATON_TOPIC_MIN_INSYNC_REPLICAS="1",
        DATABASE_URL=database_url,  # production is privacy mode: the data keys
        **PRIVACY,
    )
    async for ingest in client_for(settings):
        response = await ingest.post(
            "/v1/track",
            auth=(KEY, ""),
            json={
                "userId": "lead-privacy-1",
                "event": "Pricing Viewed",
                "messageId": "m-privacy-1",
                "timestamp": datetime.now(UTC).isoformat(),
                "context": {"ip": "203.0.113.77", "userAgent": AGENT},
            },
        )
        assert response.status_code == 200, response.text
    records = await wait_for_record(
        kafka_bootstrap, f"{prefix}leads.events", lambda r: r["event_id"] == "m-privacy-1"
    )
    sealed = records[-1]
    assert "203.0.113.77" not in str(sealed) and "Grace" not in str(sealed)
    store = await KeyStore.open(settings)
    try:
        keys = await store.keys([sealed["lead_id"]], create=False)
    finally:
        await store.close()
    event = open_event(sealed, keys[sealed["lead_id"]])  # what the scorer reads
    assert event["ip"] == "203.0.113.0" and event["context"]["ip"] == "203.0.113.0"
    assert event["user_agent"] is None and "userAgent" not in event["context"]
    assert "203.0.113.77" not in str(event) and "Grace" not in str(event)
