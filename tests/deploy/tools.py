"""Where the deployment checks find their tools: deploy/helm/install-tools.sh puts them
under $BATON_CACHE_DIR/tools (default ~/.cache/baton/tools: bin/ and schemas/), else
PATH. A missing tool skips the test on a developer's machine and fails it under
CI=true, where .ci/run has run the install script."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("BATON_CACHE_DIR") or Path.home() / ".cache" / "baton") / "tools"
INSTALL = "deploy/helm/install-tools.sh"


def missing(what: str) -> None:
    message = f"missing {what}: run {INSTALL}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message} (CI runs it from .ci/run)")
    pytest.skip(message)


def tool(name: str) -> str:
    local = TOOLS / "bin" / name
    found = str(local) if local.is_file() else shutil.which(name)
    if found is None:
        missing(name)
    assert found is not None
    return found


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool; a failure shows its output."""
    result = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result
