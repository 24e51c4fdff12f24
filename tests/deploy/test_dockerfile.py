"""The image's build stage can link on every architecture, keeps build output out of
its context, and its dependency layer installs from the files it copies. No image
builder (Docker daemon) runs on the CI machine: the Dockerfile is read, and that layer's
`uv sync` is run in a clean directory. tests/test_compose.py checks the rest of the
Dockerfile against the workspace."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.deploy.tools import ROOT

DOCKERFILE = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()


def build_stage() -> str:
    return re.search(r"^FROM .* AS build$(.*?)^FROM ", DOCKERFILE, re.M | re.S)[1]


def test_the_build_stage_installs_a_c_toolchain_on_every_architecture() -> None:
    stage = build_stage()
    install = re.search(r"^RUN (.*?build-essential.*?)(?=^\S)", stage, re.M | re.S)
    assert install, "the build stage installs no C toolchain (Rust links with cc)"
    assert "TARGETARCH" not in install[1], "the toolchain must not depend on the architecture"
    assert "--group native" in stage, "the build stage must build the compiled core"


def test_build_output_and_virtualenvs_stay_out_of_the_context() -> None:
    patterns = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {"target", "**/target", ".venv", "**/.venv"} <= patterns


def test_the_dependency_layer_installs_from_only_what_the_build_stage_copies(
    tmp_path: Path,
) -> None:
    """The build stage's first ``uv sync`` sees only the files its COPY lines name (the
    lock and the members' manifests): run it on exactly those, in a clean directory
    and a new virtualenv, from uv's cache (no network)."""
    stage = build_stage()
    copies = re.findall(r"^COPY (?!--)(\S+(?: \S+)*) (\S+)$", stage.split("COPY . .")[0], re.M)
    assert copies, "no COPY in the build stage"
    for sources, target in copies:
        for source in sources.split():
            destination = tmp_path / target
            if target.endswith("/"):
                destination /= Path(source).name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, destination)
    (sync,) = re.findall(r"^\s*(uv sync [^\n]*--no-install-workspace)$", stage, re.M)
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(tmp_path / ".venv"),
        "UV_OFFLINE": "1",
        "VIRTUAL_ENV": "",
    }
    result = subprocess.run(
        sync.split(), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".venv" / "bin" / "python").exists()
