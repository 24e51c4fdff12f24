"""Fetch the pinned Apache Kafka broker jars from Maven Central into a local cache.

The version is pinned only in ``deploy/local/kafka/pom.xml``; this module reads
it from there. The jars land in ``<cache>/kafka-<version>/libs`` where cache is
``$BATON_CACHE_DIR`` or ``~/.cache/baton``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from baton_devstack.locks import file_lock

log = logging.getLogger(__name__)

POM_PATH = Path(__file__).resolve().parent.parent / "kafka" / "pom.xml"
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


class KafkaFetchError(RuntimeError):
    """Downloading the broker jars failed."""


def kafka_version(pom: Path = POM_PATH) -> str:
    """The broker version pinned in the pom (property ``kafka.version``)."""
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", _POM_NS)
    if node is None or not (node.text or "").strip():
        raise KafkaFetchError(f"no <kafka.version> property in {pom}")
    return node.text.strip()


def cache_dir() -> Path:
    """``$BATON_CACHE_DIR`` or ``~/.cache/baton``."""
    configured = os.environ.get("BATON_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "baton"


def kafka_libs_dir(version: str | None = None, cache: Path | None = None) -> Path:
    """Where the jars of ``version`` live (whether or not they are fetched yet)."""
    version = version or kafka_version()
    return (cache or cache_dir()) / f"kafka-{version}" / "libs"


def ensure_kafka(cache: Path | None = None, pom: Path = POM_PATH) -> Path:
    """Return the libs directory of the pinned broker, fetching it with Maven if needed.

    Safe against concurrent callers (file lock) and interruptions (the jars are
    downloaded into a temporary directory that is renamed into place at the end).
    """
    version = kafka_version(pom)
    cache = cache or cache_dir()
    libs = kafka_libs_dir(version, cache)
    if _is_complete(libs, version):
        return libs
    cache.mkdir(parents=True, exist_ok=True)
    with file_lock(cache / f"kafka-{version}.lock"):
        if not _is_complete(libs, version):
            _remove_stale_downloads(cache, version)
            _download(pom, version, libs.parent)
    return libs


def _is_complete(libs: Path, version: str) -> bool:
    return (libs / f"kafka_2.13-{version}.jar").is_file()


def _remove_stale_downloads(cache: Path, version: str) -> None:
    """Temp dirs left by an interrupted fetch (we hold the lock, so nobody uses them)."""
    for stale in cache.glob(f".kafka-{version}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _download(pom: Path, version: str, target: Path) -> None:
    """Run Maven into a temp dir next to ``target`` and rename it into place."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaFetchError("Maven ('mvn') is needed to fetch the Kafka broker; install it")
    staging = Path(tempfile.mkdtemp(prefix=f".kafka-{version}-", dir=target.parent))
    try:
        log.info("fetching Apache Kafka %s from Maven Central into %s", version, target)
        _run_maven(mvn, pom, staging / "libs")
        if not _is_complete(staging / "libs", version):
            raise KafkaFetchError(f"Maven finished but kafka_2.13-{version}.jar is missing")
        staging.chmod(0o755)  # mkdtemp makes it private
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _run_maven(mvn: str, pom: Path, output: Path) -> None:
    cmd = [
        mvn, "-q", "-B", "-f", str(pom),
        "dependency:copy-dependencies", f"-DoutputDirectory={output}",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-4000:]
        raise KafkaFetchError(f"{' '.join(cmd)} failed ({result.returncode}):\n{tail}")
