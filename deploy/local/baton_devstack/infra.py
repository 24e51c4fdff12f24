"""Background Kafka + PostgreSQL for local development, kept under a state directory.

Layout of the state directory (``<repo>/.devstack`` by default)::

    infra.json          ports in use (reused on the next ``start_infra``)
    env                 KAFKA_BOOTSTRAP_SERVERS=... / DATABASE_URL=... lines
    kafka/              LocalKafka workdir (kafka.pid, kafka.log, data/)
    postgres/           LocalPostgres workdir (postgres.pid, cluster/)
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from baton_devstack.kafka import LocalKafka
from baton_devstack.locks import file_lock
from baton_devstack.ports import free_port, port_is_free
from baton_devstack.postgres import LocalPostgres

__all__ = [
    "default_state_dir",
    "infra_status",
    "read_env",
    "start_infra",
    "stop_infra",
]

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
PREFERRED_PORTS = {"kafka": 9092, "kafka_controller": 9093, "postgres": 5432}
ENV_FILE = "env"
STATE_FILE = "infra.json"


def default_state_dir() -> Path:
    """``$BATON_DEVSTACK_DIR`` or ``<repo>/.devstack``."""
    configured = os.environ.get("BATON_DEVSTACK_DIR")
    return Path(configured).expanduser().resolve() if configured else REPO_ROOT / ".devstack"


def start_infra(state_dir: Path) -> dict[str, str]:
    """Start (or find running) Kafka and PostgreSQL; write and return the env mapping."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with _state_lock(state_dir):
        ports = _load_ports(state_dir)
        kafka, postgres = _launchers(state_dir, ports, choose_free=True)
        _save_ports(state_dir, kafka, postgres)
        _start(kafka, "Kafka", kafka.bootstrap_servers)
        _start(postgres, "PostgreSQL", postgres.url)
        env = {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "DATABASE_URL": postgres.url}
        _write_env(state_dir, env)
        return env


def stop_infra(state_dir: Path) -> None:
    """Stop whatever ``start_infra`` recorded in ``state_dir``; data is kept."""
    if not (state_dir / STATE_FILE).exists():
        log.info("nothing recorded in %s", state_dir)
        return
    with _state_lock(state_dir):
        kafka, postgres = _launchers(state_dir, _load_ports(state_dir), choose_free=False)
        kafka.stop()
        postgres.stop()
        (state_dir / ENV_FILE).unlink(missing_ok=True)
        log.info("Kafka and PostgreSQL stopped (state kept in %s)", state_dir)


def infra_status(state_dir: Path) -> dict[str, bool]:
    """``{"kafka": running?, "postgres": running?}`` for the recorded processes."""
    if not (state_dir / STATE_FILE).exists():
        return {"kafka": False, "postgres": False}
    kafka, postgres = _launchers(state_dir, _load_ports(state_dir), choose_free=False)
    return {"kafka": kafka.is_running, "postgres": postgres.is_running}


def read_env(state_dir: Path) -> dict[str, str]:
    """Parse ``<state_dir>/env`` (empty when the infra is down)."""
    try:
        lines = (state_dir / ENV_FILE).read_text().splitlines()
    except FileNotFoundError:
        return {}
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _launchers(
    state_dir: Path, ports: dict[str, int], choose_free: bool
) -> tuple[LocalKafka, LocalPostgres]:
    """Launchers on the recorded ports; with ``choose_free``, stopped services get
    re-checked ports (recorded, else preferred, else any free one)."""
    recorded = {**PREFERRED_PORTS, **ports}
    kafka = LocalKafka(
        state_dir / "kafka", recorded["kafka"], recorded["kafka_controller"], detach=True
    )
    postgres = LocalPostgres(state_dir / "postgres", recorded["postgres"])
    if choose_free and not kafka.is_running:
        kafka.port = _pick_port(ports.get("kafka"), PREFERRED_PORTS["kafka"])
        controller = _pick_port(ports.get("kafka_controller"), PREFERRED_PORTS["kafka_controller"])
        kafka.controller_port = controller if controller != kafka.port else free_port()
    if choose_free and not postgres.is_running:
        postgres.port = _pick_port(ports.get("postgres"), PREFERRED_PORTS["postgres"])
    return kafka, postgres


def _pick_port(recorded: int | None, preferred: int) -> int:
    """The recorded port if still free, else the preferred one if free, else any free port."""
    for candidate in (recorded, preferred):
        if candidate is not None and port_is_free(candidate):
            return candidate
    return free_port()


def _start(service: LocalKafka | LocalPostgres, name: str, address: str) -> None:
    if service.is_running:
        log.info("%s already running at %s (pid %s)", name, address, service.pid)
    service.start()


def _load_ports(state_dir: Path) -> dict[str, int]:
    try:
        data: dict[str, Any] = json.loads((state_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return {}
    return {key: int(value) for key, value in data.get("ports", {}).items()}


def _save_ports(state_dir: Path, kafka: LocalKafka, postgres: LocalPostgres) -> None:
    ports = {
        "kafka": kafka.port,
        "kafka_controller": kafka.controller_port,
        "postgres": postgres.port,
    }
    (state_dir / STATE_FILE).write_text(json.dumps({"ports": ports}, indent=2) + "\n")


def _write_env(state_dir: Path, env: dict[str, str]) -> None:
    text = "".join(f"{key}={value}\n" for key, value in env.items())
    tmp = state_dir / f".{ENV_FILE}.tmp"
    tmp.write_text(text)
    tmp.replace(state_dir / ENV_FILE)


def _state_lock(state_dir: Path) -> AbstractContextManager[None]:
    """Serialise concurrent infra-up/infra-down on the same state directory."""
    return file_lock(state_dir / ".lock")
