"""Ingest as a real process (the way trackers reach it), on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from baton_devstack.ports import free_port
from baton_devstack.services import SERVICES, ServiceProcess

INGEST = next(spec for spec in SERVICES if spec.name == "ingest")
WRITE_KEY = "process-write-key"


def start_ingest(bootstrap: str, prefix: str, log_dir: Path, **env: str) -> ServiceProcess:
    proc = ServiceProcess(
        INGEST,
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "BATON_TOPIC_PREFIX": prefix,
            "BATON_ENV": "test",
            "BATON_INGEST_WRITE_KEYS": WRITE_KEY,
            "BATON_LOG_FORMAT": "console",
            **env,
        },
        log_dir / "ingest.log",
        free_port(),
    )
    proc.start()
    try:
        proc.wait_ready()
    except BaseException:
        proc.stop()
        raise
    return proc


@pytest.fixture
def ingest_process(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> Iterator[ServiceProcess]:
    proc = start_ingest(kafka_bootstrap, f"{unique_name}.", tmp_path)
    try:
        yield proc
    finally:
        proc.stop()
