"""Nothing acknowledged is ever lost: broker outage mid-load, and a graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import httpx
import pytest

from baton_devstack.kafka import LocalKafka
from baton_devstack.services import ServiceProcess
from tests.ingest.conftest import WRITE_KEY, start_ingest
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration


async def post_event(client: httpx.AsyncClient, url: str) -> tuple[str, int | None]:
    event_id = uuid.uuid4().hex
    try:
        response = await client.post(
            f"{url}/v1/track",
            auth=(WRITE_KEY, ""),
            json={"userId": f"u-{event_id[:2]}", "event": "Load", "messageId": event_id},
        )
    except httpx.HTTPError:
        return event_id, None
    return event_id, response.status_code


async def test_every_acknowledged_event_survives_a_broker_outage_mid_load(
    tmp_path: Path, unique_name: str
) -> None:
    kafka = LocalKafka(tmp_path / "kafka")
    kafka.start()
    proc = start_ingest(
        kafka.bootstrap_servers,
        f"{unique_name}.",
        tmp_path,
        BATON_INGEST_PRODUCE_TIMEOUT="2",
        BATON_INGEST_RETRY_AFTER="1",
    )
    results: list[tuple[str, int | None]] = []
    phase = {"name": "before"}
    try:
        async with httpx.AsyncClient(timeout=10) as client:

            async def worker() -> None:
                while phase["name"] != "done":
                    results.append(await post_event(client, proc.url))

            async def conductor() -> None:
                async def wait_results(n: int) -> None:
                    while len(results) < n:
                        await asyncio.sleep(0.05)

                await wait_results(300)
                phase["name"] = "outage"
                await asyncio.to_thread(kafka.stop)
                await wait_results(len(results) + 40)  # requests answered while down
                while (await client.get(f"{proc.url}/healthz")).status_code != 503:
                    await asyncio.sleep(0.2)  # readiness follows Kafka
                phase["name"] = "after"
                await asyncio.to_thread(kafka.start)
                ok_before = sum(1 for _, s in results if s == 200)
                while sum(1 for _, s in results if s == 200) < ok_before + 200:
                    await asyncio.sleep(0.05)
                phase["name"] = "done"

            try:
                async with asyncio.timeout(150):
                    await asyncio.gather(conductor(), *(worker() for _ in range(16)))
            except TimeoutError:
                counts = {s: sum(1 for _, x in results if x == s) for _, s in results}
                pytest.fail(
                    f"load did not complete in phase {phase['name']}: {counts}\n{proc.log_tail(15)}"
                )

        acknowledged = {event_id for event_id, status in results if status == 200}
        statuses = {status for _, status in results}
        assert 503 in statuses, "the outage should have been visible as 503s"
        assert statuses <= {200, 503, None}, statuses
        stored = {
            e["event_id"]
            for e in await read_all(
                kafka.bootstrap_servers, f"{unique_name}.leads.events", idle_s=2
            )
        }
        missing = acknowledged - stored
        assert not missing, f"{len(missing)} acknowledged events are not in leads.events"
    finally:
        proc.stop()
        kafka.stop()


async def test_sigterm_drains_in_flight_requests_and_loses_nothing(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    proc: ServiceProcess = start_ingest(kafka_bootstrap, f"{unique_name}.", tmp_path)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            requests = [asyncio.create_task(post_event(client, proc.url)) for _ in range(200)]
            while not any(r.done() for r in requests):
                await asyncio.sleep(0.01)
            assert proc.process is not None
            proc.process.send_signal(signal.SIGTERM)
            results = await asyncio.gather(*requests)
        exit_code = await asyncio.to_thread(proc.process.wait, 40)
        log_tail = proc.log_tail(10)
    finally:
        proc.stop()
    # uvicorn re-raises the signal after its graceful shutdown, hence -SIGTERM.
    assert exit_code in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log_tail
    acknowledged = {event_id for event_id, status in results if status == 200}
    assert acknowledged, "some requests must have been answered"
    assert {status for _, status in results} <= {200, None}
    stored = {
        e["event_id"]
        for e in await read_all(kafka_bootstrap, f"{unique_name}.leads.events", idle_s=1)
    }
    assert acknowledged <= stored
