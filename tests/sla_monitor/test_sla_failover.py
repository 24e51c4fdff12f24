"""Two monitors share the clocks: one a real process that is SIGKILLed mid-stream, one
in-process. Every clock still breaches, each with one event id, and the survivor takes
over what the dead one held. The API of the process is checked on the way."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from baton_devstack.services import SERVICES, ServiceProcess
from baton_shared.ids import stable_id
from baton_shared.schemas import Assignment
from baton_shared.settings import LOCAL_ADMIN_TOKEN
from tests.support.kafka import read_all, wait_for_record

pytestmark = pytest.mark.integration

CLOCKS = 240
SPREAD_SECONDS = 4.0
WINDOW_SECONDS = 2.0
BATCH = 10
SLA_SPEC = next(s for s in SERVICES if s.name == "sla-monitor")
AUTH = {"Authorization": f"Bearer {LOCAL_ADMIN_TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assignment(assigned_at: datetime) -> Assignment:
    return Assignment(
        assignment_id=str(uuid.uuid4()),
        transition_id=uuid.uuid4().hex,
        lead_id=f"lead-{uuid.uuid4().hex[:8]}",
        rep_id=f"rep-{uuid.uuid4().hex[:6]}",
        strategy="round_robin",
        express=True,
        qualified_at=assigned_at,
        assigned_at=assigned_at,
    )


@pytest.fixture
async def process_monitor(sla_env: dict[str, str], tmp_path: Path):
    env = {
        **sla_env,
        "BATON_SLA_EXPRESS_SQL_SECONDS": str(WINDOW_SECONDS),
        "BATON_SLA_SWEEP_BATCH": str(BATCH),
        "BATON_LOG_FORMAT": "console",
    }
    proc = ServiceProcess(SLA_SPEC, env, tmp_path / "sla-monitor.log", free_port())
    proc.start()
    try:
        await asyncio.to_thread(proc.wait_ready, 60)
        yield proc
    finally:
        proc.kill()


async def test_api_answers_with_the_admin_token_and_explains_bad_input(
    process_monitor: ServiceProcess,
) -> None:
    async with httpx.AsyncClient(base_url=process_monitor.url, timeout=10) as http:
        assert (await http.get("/v1/leads/nobody/clocks")).status_code == 401
        empty = {"items": [], "next": None}
        assert (await http.get("/v1/leads/nobody/clocks", headers=AUTH)).json() == empty
        assert (await http.get("/v1/clocks/at-risk", headers=AUTH)).json() == empty
        report = await http.get("/v1/compliance", params={"by": "team"}, headers=AUTH)
        assert report.status_code == 200 and report.json()["rows"] == []
        naive = await http.get(
            "/v1/clocks/breached", params={"since": "2025-01-01T00:00:00"}, headers=AUTH
        )
        assert naive.status_code == 422 and "timezone" in naive.text
        [error] = naive.json()["errors"]
        assert (error["path"], error["rule"]) == ("query.since", "timezone_aware")
        backwards = await http.get(
            "/v1/compliance",
            params={"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
            headers=AUTH,
        )  # the two instants bound the window either way
        assert backwards.status_code == 200, backwards.text
        assert (backwards.json()["since"], backwards.json()["until"]) == (
            "2025-01-01T00:00:00Z",
            "2025-01-02T00:00:00Z",
        )
        metrics = (await http.get("/metrics")).text
        assert "baton_sla_open_clocks" in metrics
        assert "baton_sla_time_to_assign_seconds" in metrics


async def test_killed_monitor_mid_stream_every_clock_breaches_once_by_the_survivor(
    process_monitor: ServiceProcess, start_sla, producer, topics, kafka_bootstrap
) -> None:
    await start_sla(
        BATON_SLA_EXPRESS_SQL_SECONDS=str(WINDOW_SECONDS), BATON_SLA_SWEEP_BATCH=str(BATCH)
    )
    base = datetime.now(UTC)
    clocks = [
        assignment(base + timedelta(seconds=SPREAD_SECONDS * i / CLOCKS)) for i in range(CLOCKS)
    ]
    for a in clocks:
        await producer.send(topics.assignments, a.to_bytes(), key=a.lead_id.encode())
    await producer.flush()
    wanted = {stable_id("clock", a.assignment_id) for a in clocks}

    breached: set[str] = set()

    def seen_breaches(at_least: int):  # type: ignore[no-untyped-def]
        def match(record: dict[str, Any]) -> bool:
            if record["status"] == "breached":
                breached.add(record["clock_id"])
            return len(breached) >= at_least

        return match

    await wait_for_record(kafka_bootstrap, topics.sla, seen_breaches(CLOCKS // 3), timeout=30)
    process_monitor.kill()
    fired_by_process = process_monitor.log_path.read_text().count("status=breached")
    breached.clear()
    await wait_for_record(kafka_bootstrap, topics.sla, seen_breaches(CLOCKS), timeout=30)
    events = await read_all(kafka_bootstrap, topics.sla, idle_s=1.0)

    assert fired_by_process > 0, "the process monitor fired nothing before it was killed"
    per_clock = Counter(e["clock_id"] for e in events if e["status"] == "breached")
    assert set(per_clock) == wanted
    event_ids = {e["clock_id"]: {e["event_id"]} for e in events if e["status"] == "breached"}
    assert all(ids == {stable_id(c, "breached")} for c, ids in event_ids.items())
    # Only a batch the killed process published but had not committed may go out twice,
    # under the same event id.
    repeated = [c for c, n in per_clock.items() if n > 1]
    assert len(repeated) <= BATCH, repeated
    # Firing lateness, from the later of the deadline and the moment the clock existed
    # (a clock opened late, e.g. while its partition moved to the survivor, fires at once).
    opened_at = {
        value["clock_id"]: timestamp
        for timestamp, value in await read_with_timestamps(kafka_bootstrap, topics.sla)
        if value["status"] == "started"
    }
    lateness = [
        datetime.fromisoformat(e["at"])
        - max(datetime.fromisoformat(e["deadline_at"]), opened_at[e["clock_id"]])
        for e in events
        if e["status"] == "breached"
    ]
    assert max(lateness) < timedelta(seconds=1), max(lateness)


async def read_with_timestamps(bootstrap: str, topic: str) -> list[tuple[datetime, Any]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[tuple[datetime, Any]] = []
    try:
        while batch := await consumer.getmany(timeout_ms=1000):
            for records in batch.values():
                out.extend(
                    (datetime.fromtimestamp(r.timestamp / 1000, UTC), orjson.loads(r.value))
                    for r in records
                )
    finally:
        await consumer.stop()
    return out
