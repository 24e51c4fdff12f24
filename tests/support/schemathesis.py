"""schemathesis as a new user runs it, against a live service's own OpenAPI document, with
the repository's schemathesis.toml (what JSON Schema cannot say about Baton's APIs)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from baton_devstack.ports import free_port
from baton_devstack.services import SERVICES, ServiceProcess

CONFIG = Path(__file__).resolve().parents[2] / "schemathesis.toml"
# schemathesis's security checks send a missing or wrong credential to every operation:
# the limit on failed authentications (its own tests: tests/e2e/test_privacy.py) would
# answer them 429 after a few, so the services it fuzzes run without it.
UNLIMITED_FAILED_AUTHS = {"BATON_AUTH_MAX_FAILURES": "0"}


def schemathesis_cli() -> str:
    found = Path(sys.executable).with_name("schemathesis")
    return str(found) if found.exists() else shutil.which("schemathesis") or "schemathesis"


def run_schemathesis(
    url: str, header: str, checks: str, max_examples: int, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """``schemathesis run URL/openapi.json`` with a fixed seed; its output for asserts."""
    return subprocess.run(
        [
            schemathesis_cli(),
            "--config-file",
            str(CONFIG),
            "run",
            f"{url}/openapi.json",
            "--header",
            header,
            "--checks",
            checks,
            "--max-examples",
            str(max_examples),
            "--seed",
            "20261123",
            # One worker: parallel schema compilation in CPython 3.11 can fail inside
            # schemathesis ("AST constructor recursion depth mismatch").
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def live_service(name: str, env: dict[str, str], log: Path) -> Iterator[ServiceProcess]:
    """Service ``name`` (router, sla-monitor, ...) running as a process on a free port."""
    spec = next(spec for spec in SERVICES if spec.name == name)
    env = {**env, "BATON_LOG_FORMAT": "console", **UNLIMITED_FAILED_AUTHS}
    proc = ServiceProcess(spec, env, log, free_port())
    proc.start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()
