"""The publisher's producer batching and reconnect back-off come from IngestSettings."""

from __future__ import annotations

from baton_ingest.config import IngestSettings
from baton_ingest.publisher import ProducerTuning


def test_producer_tuning_is_read_from_the_environment() -> None:
    settings = IngestSettings.model_validate(
        {
            "BATON_ENV": "test",
            "BATON_INGEST_PRODUCER_MAX_BATCH_BYTES": "65536",
            "BATON_INGEST_PRODUCER_LINGER_MS": "10",
            "BATON_INGEST_CONNECT_RETRY_FIRST_SECONDS": "0.5",
            "BATON_INGEST_CONNECT_RETRY_MAX_SECONDS": "30",
        }
    )
    assert settings.producer_tuning == ProducerTuning(
        max_batch_bytes=65536,
        linger_ms=10,
        connect_retry_first_seconds=0.5,
        connect_retry_max_seconds=30.0,
    )


def test_producer_defaults_are_the_publishers() -> None:
    assert IngestSettings.model_validate({"BATON_ENV": "test"}).producer_tuning == ProducerTuning()
