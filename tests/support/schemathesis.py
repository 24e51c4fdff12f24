"""schemathesis as a new user runs it, against a live service's own OpenAPI document."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


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
