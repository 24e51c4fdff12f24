"""Session-wide infrastructure for the test suite: Kafka and PostgreSQL.

Each comes from, in order of preference:
1. the environment (``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL``),
2. testcontainers, when a Docker daemon answers,
3. baton_devstack's local launchers (Kafka jars from Maven, Debian's PostgreSQL 15).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from baton_devstack.kafka import LocalKafka
from baton_devstack.postgres import LocalPostgres

DOCKER_CHECK_TIMEOUT = 5.0
POSTGRES_IMAGE = "postgres:15"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class DatabaseFactory(Protocol):
    """What the ``pg_cluster`` fixture gives: isolated databases on the test server."""

    @property
    def url(self) -> str:
        """URL of the server's main test database."""
        ...

    def create_database(self, name: str) -> str:
        """Create database ``name`` (idempotent) and return its URL."""
        ...


def pytest_sessionstart(session: pytest.Session) -> None:
    """``BATON_SCORER_CORE=native`` (CI sets it where cargo is) makes a missing compiled
    core a failed run, not ~550 silently skipped comparisons."""
    if os.environ.get("BATON_SCORER_CORE") != "native":
        return
    try:
        import baton_scorer_native  # noqa: F401
    except ImportError as exc:
        pytest.exit(
            f"BATON_SCORER_CORE=native but the compiled core does not import ({exc}); "
            "build it with `make install` (needs cargo)",
            returncode=1,
        )


@cache
def docker_available() -> bool:
    """True when a Docker daemon answers within a few seconds."""
    if shutil.which("docker") is None:
        return _docker_sdk_ping()
    try:
        result = subprocess.run(
            ["docker", "info"], capture_output=True, timeout=DOCKER_CHECK_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def _docker_sdk_ping() -> bool:
    """No docker CLI: ask the daemon through the SDK (what testcontainers uses)."""
    try:
        import docker

        return bool(docker.from_env(timeout=int(DOCKER_CHECK_TIMEOUT)).ping())
    except Exception:
        return False


class ServerDatabases:
    """Creates databases on the PostgreSQL server behind ``url`` (env or container mode)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def create_database(self, name: str) -> str:
        if not _DB_NAME.match(name):
            raise ValueError(f"invalid database name {name!r}")
        _run_coroutine_blocking(self._create(name))
        return urlunsplit(urlsplit(self.url)._replace(path=f"/{name}"))

    async def _create(self, name: str) -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(self.url), timeout=10)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            pass
        finally:
            await connection.close()


def _asyncpg_dsn(url: str) -> str:
    """asyncpg wants plain ``postgresql://``, not SQLAlchemy's ``postgresql+driver://``."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)


def _run_coroutine_blocking(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a Kafka broker for the whole session."""
    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield servers
    elif docker_available():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
    else:
        kafka = LocalKafka(tmp_path_factory.mktemp("kafka"))
        kafka.start()
        try:
            yield kafka.bootstrap_servers
        finally:
            kafka.stop()


@pytest.fixture(scope="session")
def _postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    """The session's PostgreSQL server, as something that can create databases."""
    if url := os.environ.get("DATABASE_URL"):
        yield ServerDatabases(url)
    elif docker_available():
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer(
            POSTGRES_IMAGE, username="baton", password="baton", dbname="baton", driver=None
        ) as container:
            yield ServerDatabases(container.get_connection_url())
    else:
        postgres = LocalPostgres(tmp_path_factory.mktemp("postgres"))
        postgres.start()
        try:
            yield postgres
        finally:
            postgres.remove()


@pytest.fixture(scope="session")
def database_url(_postgres_server: DatabaseFactory) -> str:
    """``postgresql://`` URL of the session's main test database."""
    return _postgres_server.url


@pytest.fixture(scope="session")
def pg_cluster(_postgres_server: DatabaseFactory) -> DatabaseFactory:
    """``pg_cluster.create_database(name) -> url`` for tests that need their own database."""
    return _postgres_server


@pytest.fixture
def unique_name() -> str:
    """A short name unique to this test, e.g. for topic prefixes and consumer groups."""
    return f"t{uuid.uuid4().hex[:8]}"
