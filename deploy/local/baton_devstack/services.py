"""The four Baton services as separate local processes, for ``make up``/``run`` and e2e tests.

Each service runs as ``python -m <package>.main`` from this workspace's
interpreter, with the environment it is given (so tests can isolate topics,
consumer groups and databases), logs to its own file, and counts as started
only once its ``GET /healthz`` answers 200.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from baton_devstack.processes import pid_alive, read_pid_file, terminate_pid

READY_TIMEOUT = 90.0


@dataclass(frozen=True)
class ServiceSpec:
    """How to start one service and where it listens."""

    name: str
    module: str
    port_var: str
    port: int


SERVICES = (
    ServiceSpec("ingest", "baton_ingest.main", "BATON_INGEST_PORT", 8000),
    ServiceSpec("scorer", "baton_scorer.main", "BATON_SCORER_PORT", 8003),
    ServiceSpec("router", "baton_router.main", "BATON_ROUTER_PORT", 8001),
    ServiceSpec("sla-monitor", "baton_sla_monitor.main", "BATON_SLA_PORT", 8002),
)


class ServiceStartError(RuntimeError):
    """A service exited or did not become ready; the message holds its log tail."""


@dataclass
class ServiceProcess:
    """One running service process."""

    spec: ServiceSpec
    env: dict[str, str]
    log_path: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, self.spec.port_var: str(self.port)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.spec.module],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServiceStartError(
                    f"{self.spec.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ServiceStartError(
            f"{self.spec.name} not ready after {timeout:.0f} s:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL: the crash a test wants to survive."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def start_services(
    env: dict[str, str],
    log_dir: Path,
    ports: dict[str, int] | None = None,
    only: tuple[str, ...] | None = None,
) -> list[ServiceProcess]:
    """Start the services (all, or ``only`` those named) and wait until each is ready.
    On failure the ones already started are stopped again."""
    started: list[ServiceProcess] = []
    try:
        for spec in SERVICES:
            if only is not None and spec.name not in only:
                continue
            proc = ServiceProcess(
                spec, env, log_dir / f"{spec.name}.log", (ports or {}).get(spec.name, spec.port)
            )
            proc.start()
            started.append(proc)
        for proc in started:
            proc.wait_ready()
    except BaseException:
        stop_services(started)
        raise
    return started


def stop_services(services: list[ServiceProcess]) -> None:
    for proc in reversed(services):
        proc.stop()


def write_pid_files(services: list[ServiceProcess], pid_dir: Path) -> None:
    pid_dir.mkdir(parents=True, exist_ok=True)
    for proc in services:
        (pid_dir / f"{proc.spec.name}.pid").write_text(f"{proc.pid}\n")


def stop_recorded(pid_dir: Path) -> list[str]:
    """Stop services recorded by ``write_pid_files`` (a different process started them)."""
    stopped = []
    for spec in reversed(SERVICES):
        path = pid_dir / f"{spec.name}.pid"
        pid = read_pid_file(path)
        if pid is not None and pid_alive(pid) and _is_service(pid, spec):
            terminate_pid(pid)
            stopped.append(spec.name)
        path.unlink(missing_ok=True)
    return stopped


def _is_service(pid: int, spec: ServiceSpec) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return spec.module.encode() in cmdline
