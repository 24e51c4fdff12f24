"""The whole local Baton: infrastructure plus the four services, for ``make up/down/run``.

Environment variables the services read (``KAFKA_BOOTSTRAP_SERVERS``,
``DATABASE_URL``, ``BATON_*``) pass through: a value set in the caller's
environment wins over the local default. When both ``KAFKA_BOOTSTRAP_SERVERS``
and ``DATABASE_URL`` are set, no local Kafka or PostgreSQL is started.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from baton_devstack import infra
from baton_devstack.ports import port_is_free
from baton_devstack.services import (
    SERVICES,
    ServiceStartError,
    start_services,
    stop_recorded,
    stop_services,
    write_pid_files,
)

LOCAL_DEFAULTS = {
    "BATON_ENV": "local",
    "BATON_ADMIN_TOKEN": "local-admin-token",
    "BATON_INGEST_WRITE_KEYS": "local-write-key",
    "BATON_LOG_FORMAT": "console",
}
# `make run` shortens the SLA windows so the demo shows breaches within minutes.
DEMO_DEFAULTS = {"BATON_SLA_EXPRESS_SQL_SECONDS": "60", "BATON_SLA_SQL_SECONDS": "120"}


class StackError(RuntimeError):
    """The local stack could not start; the message says what to do."""


def service_env(state_dir: Path, demo: bool = False) -> dict[str, str]:
    """Infrastructure addresses and local defaults, overridden by the caller's environment."""
    if "KAFKA_BOOTSTRAP_SERVERS" in os.environ and "DATABASE_URL" in os.environ:
        base: dict[str, str] = {}
    else:
        base = infra.start_infra(state_dir)
    env = {
        **base,
        **LOCAL_DEFAULTS,
        **(DEMO_DEFAULTS if demo else {}),
        "BATON_SCORER_DATA_DIR": str(state_dir / "scorer"),
    }
    for key in list(env):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def service_ports() -> dict[str, int]:
    ports = {}
    for spec in SERVICES:
        port = int(os.environ.get(spec.port_var, spec.port))
        if not port_is_free(port):
            raise StackError(
                f"port {port} for {spec.name} is taken (another `make up`?); "
                f"run `make down` or set {spec.port_var}"
            )
        ports[spec.name] = port
    return ports


def up(state_dir: Path, demo: bool = False) -> dict[str, str]:
    """Start everything in the background; returns once every service is ready."""
    stop_recorded(state_dir / "services")
    ports = service_ports()
    env = service_env(state_dir, demo)
    try:
        services = start_services(env, state_dir / "logs", ports)
    except ServiceStartError as exc:
        raise StackError(str(exc)) from exc
    write_pid_files(services, state_dir / "services")
    return {proc.spec.name: proc.url for proc in services}


def down(state_dir: Path) -> None:
    stop_recorded(state_dir / "services")
    infra.stop_infra(state_dir)


def run(state_dir: Path) -> int:
    """Everything in the foreground, with the demo; Ctrl-C stops it all."""
    from baton_devstack.demo import Demo

    stop_recorded(state_dir / "services")  # left by an earlier run that was killed
    ports = service_ports()
    env = service_env(state_dir, demo=True)
    services = []
    try:
        services = start_services(env, state_dir / "logs", ports)
        # Recorded like `up` does, so `baton-devstack down` finds them if this process
        # is killed before it can stop them.
        write_pid_files(services, state_dir / "services")
        for proc in services:
            print(f"{proc.spec.name} ready on {proc.url} (log: {proc.log_path})", flush=True)
        urls = {proc.spec.name: proc.url for proc in services}
        asyncio.run(Demo(env, state_dir, urls).run())
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    except ServiceStartError as exc:
        raise StackError(str(exc)) from exc
    finally:
        # A second Ctrl-C while stopping must not leave processes behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stop_services(services)
            stop_recorded(state_dir / "services")
            infra.stop_infra(state_dir)
        finally:
            signal.signal(signal.SIGINT, previous)
    return 0
