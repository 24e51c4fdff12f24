"""Throwaway PostgreSQL 15 cluster on 127.0.0.1, run from the Debian binaries.

initdb refuses to run as root, so as root every server-side command runs as the
``postgres`` user (``runuser -u postgres --``) and the cluster directory is owned
by that user. When the requested workdir is not reachable by ``postgres`` (e.g.
under /root, mode 700) or too deep for a Unix socket path, the cluster lives in
``/tmp/baton-pg-<hash of workdir>`` instead and ``<workdir>/cluster`` links to it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from baton_devstack.ports import LOCALHOST, free_port, port_is_free
from baton_devstack.processes import read_pid_file

__all__ = ["LocalPostgres", "PostgresError", "find_pg_bindir"]

log = logging.getLogger(__name__)

SERVICE_USER = "postgres"
DB_USER = "baton"
DEFAULT_DB = "baton"
START_TIMEOUT = 60
_FALLBACK_BINDIRS = (Path("/usr/lib/postgresql/15/bin"),)
_MAX_SOCKET_DIR = 90  # sun_path is 108 bytes; leave room for "/.s.PGSQL.NNNNN"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresError(RuntimeError):
    """A PostgreSQL command failed."""


def find_pg_bindir() -> Path:
    """Directory holding initdb/pg_ctl: PATH, then ``pg_config --bindir``, then Debian's."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += [_pg_config_bindir(), *_FALLBACK_BINDIRS]
    for bindir in candidates:
        if bindir and (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PostgresError("PostgreSQL server binaries (initdb, pg_ctl) not found")


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    return Path(result.stdout.strip()) if result.returncode == 0 else None


def _as_root() -> bool:
    return os.geteuid() == 0


class LocalPostgres:
    """A PostgreSQL cluster with trust auth for user ``baton`` and a ``baton`` database.

    ``stop()`` then ``start()`` on the same workdir keeps the data. The port is
    chosen once (a free one unless given).
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.port = port if port is not None else free_port()
        self.bindir = find_pg_bindir()
        self.cluster_dir = self._choose_cluster_dir()

    # -- paths & addresses -------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.cluster_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.cluster_dir / "postgres.log"

    @property
    def pid_path(self) -> Path:
        return self.workdir / "postgres.pid"

    @property
    def url(self) -> str:
        """``postgresql://baton@127.0.0.1:PORT/baton``."""
        return self.database_url(DEFAULT_DB)

    def database_url(self, name: str) -> str:
        return f"postgresql://{DB_USER}@{LOCALHOST}:{self.port}/{name}"

    @property
    def pid(self) -> int | None:
        """Pid of the postmaster, when running."""
        return read_pid_file(self.data_dir / "postmaster.pid") if self.is_running else None

    @property
    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._pg_ctl("status", check=False).returncode == 0

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """initdb on first use, start the server and create the ``baton`` database."""
        if not self.is_running:
            self._prepare_cluster_dir()
            self._initdb()
            if not port_is_free(self.port):
                raise PostgresError(f"cannot start PostgreSQL: port {self.port} is already in use")
            self._pg_ctl("start", "-l", str(self.log_path), "-w", "-t", str(START_TIMEOUT),
                         "-o", self._server_options())  # fmt: skip
        self.pid_path.write_text(f"{self.pid}\n")
        self.create_database(DEFAULT_DB)
        log.info("PostgreSQL ready at %s (data in %s)", self.url, self.data_dir)

    def stop(self) -> None:
        """Fast shutdown (``pg_ctl stop -m fast -w``); a stopped cluster is left alone."""
        if self.is_running:
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(START_TIMEOUT))
        self.pid_path.unlink(missing_ok=True)

    def remove(self) -> None:
        """Stop the server and delete the cluster (including a /tmp fallback directory)."""
        self.stop()
        shutil.rmtree(self.cluster_dir, ignore_errors=True)
        (self.workdir / "cluster").unlink(missing_ok=True)

    def create_database(self, name: str) -> str:
        """Create database ``name`` unless it exists; return its URL."""
        if not _DB_NAME.match(name):
            raise ValueError(f"invalid database name {name!r} (use [a-z_][a-z0-9_]*)")
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        if exists.strip() != "1":
            self._psql(f'CREATE DATABASE "{name}"', ignore="already exists")
        return self.database_url(name)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no postgres.log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- internals ---------------------------------------------------------

    def _choose_cluster_dir(self) -> Path:
        preferred = self.workdir / "cluster"
        if preferred.is_symlink() or (
            len(str(preferred / "data")) <= _MAX_SOCKET_DIR and self._reachable(self.workdir)
        ):
            return preferred.resolve()
        digest = hashlib.sha1(str(self.workdir).encode()).hexdigest()[:12]
        return Path("/tmp") / f"baton-pg-{digest}"

    def _reachable(self, directory: Path) -> bool:
        """Can the server user enter ``directory`` (created if missing)?"""
        directory.mkdir(parents=True, exist_ok=True)
        if not _as_root():
            return True
        probe = ["runuser", "-u", SERVICE_USER, "--", "test", "-x", str(directory)]
        return subprocess.run(probe, capture_output=True, check=False).returncode == 0

    def _prepare_cluster_dir(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cluster_dir.mkdir(parents=True, exist_ok=True)
        if self.cluster_dir.parent != self.workdir:
            log.info(
                "%s is not usable by the '%s' user; PostgreSQL cluster goes to %s",
                self.workdir, SERVICE_USER, self.cluster_dir,
            )  # fmt: skip
            link = self.workdir / "cluster"
            if not link.is_symlink():
                link.symlink_to(self.cluster_dir)
        if _as_root():
            shutil.chown(self.cluster_dir, SERVICE_USER, SERVICE_USER)

    def _initdb(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self._run_server_cmd([
            str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", DB_USER,
            "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync",
        ])  # fmt: skip

    def _server_options(self) -> str:
        return (
            f"-p {self.port} -c listen_addresses={LOCALHOST}"
            f" -c unix_socket_directories={self.data_dir}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200"
        )

    def _pg_ctl(
        self, action: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), *args, action]
        return self._run_server_cmd(cmd, check=check)

    def _run_server_cmd(
        self, cmd: list[str], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a server-side command, as the ``postgres`` user when we are root."""
        if _as_root():
            cmd = ["runuser", "-u", SERVICE_USER, "--", *cmd]
        result = subprocess.run(
            cmd, capture_output=True, text=True, check=False, cwd=self.cluster_dir,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise PostgresError(
                f"{' '.join(cmd)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n{self.log_tail()}"
            )
        return result

    def _psql(self, sql: str, ignore: str | None = None) -> str:
        psql = self.bindir / "psql"
        cmd = [
            str(psql if psql.is_file() else "psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1",
            "-h", LOCALHOST, "-p", str(self.port), "-U", DB_USER, "-d", "postgres", "-c", sql,
        ]  # fmt: skip
        env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if result.returncode != 0 and not (ignore and ignore in result.stderr):
            raise PostgresError(f"psql {sql!r} failed: {result.stderr.strip()}")
        return result.stdout
