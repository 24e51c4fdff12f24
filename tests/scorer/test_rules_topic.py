"""Rules published on the compacted rules topic: checked before publishing, picked up by every
worker without a restart, an invalid document refused — real workers, real broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError

from baton_scorer import core
from baton_scorer.metrics import RULES_FOLLOW_ERRORS
from baton_scorer.rules import load_rules
from baton_scorer.rules_source import RulesSource
from baton_scorer.rules_topic import RulesFollower, publish_rules
from tests.scorer.worker import (
    event,
    healthz,
    produce,
    rules_worker_env,
    sample,
    scrape,
    start_worker,
    wait_until,
)
from tests.support.kafka import wait_for_record

pytestmark = pytest.mark.integration

FILE_RULES = """
name: from-file
engagement: {pages: {pricing: 40}}
express_lanes: [Demo Requested]
"""
PUBLISHED = """
name: from-topic
thresholds: {mql: 30, sql: 100}
engagement: {pages: {pricing: 40}}
express_lanes: [Demo Requested]
"""
INVALID = """
name: broken
thresholds:
  mql: 50
  sql: lots
"""


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baton_scorer.main", "rules", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def cleanup_policy(bootstrap: str, topic: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, None)]
        )
        [(_, _, _, _, entries)] = response.resources
        return next(entry[1] for entry in entries if entry[0] == "cleanup.policy")
    finally:
        await admin.close()


async def test_published_rules_reach_every_worker_and_invalid_ones_are_refused(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env, rules_file = await rules_worker_env(kafka_bootstrap, tmp_path, FILE_RULES)
    prefix = env["BATON_TOPIC_PREFIX"]
    rules_topic = f"{prefix}scorer.rules"
    first = start_worker(env, tmp_path / "scorer-1.log")
    second = None
    try:
        health = await healthz(first.url)
        assert health["rules_origin"] == "file"
        assert health["core"] == core.KIND  # the compiled core when it is built

        # An invalid file is refused before anything is published, naming line and field.
        broken = tmp_path / "broken.yaml"
        broken.write_text(INVALID)
        refused = cli(env, "publish", str(broken))
        assert refused.returncode == 2
        assert f"{broken} line 5: thresholds.sql: Input should be a valid number" in (
            refused.stderr
        )

        good = tmp_path / "published.yaml"
        good.write_text(PUBLISHED)
        version = load_rules(good).version
        published = cli(env, "publish", str(good))
        assert published.returncode == 0, published.stderr
        assert f"published {version} to {rules_topic}[0]@0" in published.stdout
        assert await cleanup_policy(kafka_bootstrap, rules_topic) == "compact"

        async def first_uses_published() -> bool:
            body = await healthz(first.url)
            return body["rules_version"] == version and body["rules_origin"] == "topic"

        await wait_until(first_uses_published, 30, "the running worker to take the topic's rules")

        # Every transition names the version in use: the published one (MQL at 30 here).
        now = datetime.now(UTC)
        await produce(
            kafka_bootstrap,
            f"{prefix}leads.events",
            [event("v1", "lead-t", "page", now, page_category="pricing")],
        )
        seen = await wait_for_record(
            kafka_bootstrap, f"{prefix}leads.transitions", lambda t: t["lead_id"] == "lead-t", 60
        )
        assert seen[-1]["to_stage"] == "mql"
        assert seen[-1]["rules_version"] == version

        # A document that bypassed the CLI and is invalid: refused, counted, logged with
        # the line and field; the published version stays in use.
        await produce(kafka_bootstrap, rules_topic, [("rules", INVALID.encode())])

        async def refused_and_counted() -> bool:
            metrics = await scrape(first.url)
            return sample(metrics, "baton_scorer_rules_reload_errors_total") == 1

        await wait_until(refused_and_counted, 30, "the invalid document to be refused")
        assert (await healthz(first.url))["rules_version"] == version
        log = (tmp_path / "scorer-1.log").read_text()
        assert "rules_reload_refused" in log
        assert f"{rules_topic}[0]@1 line 5: thresholds.sql" in log

        # A worker that starts later reads the topic before scoring: same version.
        second = start_worker(env, tmp_path / "scorer-2.log")
        body = await healthz(second.url)
        assert (body["rules_version"], body["rules_origin"]) == (version, "topic")

        # Withdrawn: both workers go back to their file, without a restart.
        withdrawn = cli(env, "withdraw")
        assert withdrawn.returncode == 0, withdrawn.stderr
        file_version = load_rules(rules_file).version

        async def both_back_on_the_file() -> bool:
            bodies = [await healthz(w.url) for w in (first, second)]
            return all(b["rules_version"] == file_version for b in bodies)

        await wait_until(both_back_on_the_file, 30, "both workers to go back to the file")
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_check_prints_the_version_or_the_line_and_field(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(PUBLISHED)
    checked = cli({}, "check", str(good))
    assert (checked.returncode, checked.stdout.strip()) == (0, load_rules(good).version)
    broken = tmp_path / "broken.yaml"
    broken.write_text(INVALID)
    refused = cli({}, "check", str(broken))
    assert refused.returncode == 2
    assert "line 5: thresholds.sql" in refused.stderr


def test_topic_rules_win_over_the_file_until_withdrawn(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(FILE_RULES)
    source = RulesSource(rules_file)
    assert source.offer(PUBLISHED, "topic@0")
    assert source.rules.name == "from-topic"
    assert not source.offer(INVALID, "topic@1")  # refused: still the published rules
    assert source.rules.name == "from-topic"
    rules_file.write_text(FILE_RULES.replace("from-file", "edited-file"))
    os.utime(rules_file, ns=(1, 1))  # a new stamp whatever the filesystem's resolution
    assert not source.poll()  # the edit is read, but the topic still wins
    assert source.offer(None, "topic@2")  # tombstone: back to the (edited) file
    assert (source.rules.name, source.origin) == ("edited-file", "file")


async def test_a_failed_read_of_the_rules_topic_does_not_end_the_following(
    kafka_bootstrap: str, unique_name: str
) -> None:
    """A broker error while following (here: the first consumer cannot be created) is
    logged, counted and retried; the worker still picks up what is published."""
    topic = f"{unique_name}.scorer.rules"
    source = RulesSource(None)
    follower = RulesFollower(kafka_bootstrap, topic, source)
    await publish_rules(kafka_bootstrap, topic, PUBLISHED)
    make_consumer = follower._consumer
    attempts = 0

    async def first_attempt_fails():  # the real consumer from the second attempt on
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise KafkaConnectionError("broker went away")
        return await make_consumer()

    follower._consumer = first_attempt_fails  # type: ignore[method-assign]
    errors_before = RULES_FOLLOW_ERRORS._value.get()
    task = asyncio.create_task(follower.follow(lambda: None))
    try:
        async with asyncio.timeout(20):
            while source.rules.name != "from-topic":
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert attempts == 2
    assert RULES_FOLLOW_ERRORS._value.get() == errors_before + 1
