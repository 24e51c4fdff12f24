"""The image's build stage can link on every architecture and keeps build output out of
its context. No image builder runs on the CI machine, so these are read from the files:
tests/test_compose.py checks the rest of the Dockerfile against the workspace."""

from __future__ import annotations

import re

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
