"""Conversion reporting on a running monitor (real Kafka and PostgreSQL): a generated
history whose true figures the test knows goes onto the topics; the reporting store,
``GET /v1/reports/conversion``, ``baton funnel --by`` and the gauges give those figures,
and so does a damaged store rebuilt from the topics while the monitor runs; bad
parameters are problem details."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from baton_analytics import conversion
from baton_analytics.ranges import ReadRange
from baton_shared.clock import utcnow
from baton_shared.conversion import DIMENSIONS, ConversionReport
from baton_shared.schemas import Activity, Assignment, LeadEvent, LeadMerged, SlaEvent, Transition
from baton_shared.topics import Topics
from baton_sla_monitor.app import create_app
from baton_sla_monitor.reporting.rebuild import rebuild
from tests.support.conversion_history import SINCE, UNTIL, History, assert_true_figures, history
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

ADMIN = "sla-reporting-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
WINDOW = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}


def topic_of(fact: object, topics: Topics) -> str:
    for model, topic in (
        (Transition, topics.transitions),
        (Assignment, topics.assignments),
        (Activity, topics.activity),
        (SlaEvent, topics.sla),
        (LeadMerged, topics.merges),
        (LeadEvent, topics.events),
    ):
        if isinstance(fact, model):
            return topic
    raise AssertionError(fact)


@pytest.fixture
async def reporting(
    settings_for, producer, topics
) -> AsyncIterator[tuple[httpx.AsyncClient, object, History]]:
    """A running monitor's API, with the generated history on the topics."""
    app = create_app(settings_for(BATON_ADMIN_TOKEN=ADMIN, BATON_SLA_REPORTING_GAUGE_DAYS="60"))
    service = app.state.service
    await service.start()
    try:
        h = history()
        sent = [
            await producer.send(topic_of(f, topics), f.to_bytes(), key=f.lead_id.encode())
            for f in h.records
        ]
        await asyncio.gather(*sent)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sla") as client:
            yield client, service, h
    finally:
        await service.stop()


async def report(client: httpx.AsyncClient, by: str) -> ConversionReport:
    response = await client.get("/v1/reports/conversion", params={**WINDOW, "by": by}, headers=AUTH)
    assert response.status_code == 200, response.text
    return ConversionReport.model_validate(response.json())


async def holds_history(client: httpx.AsyncClient, h: History) -> bool:
    """Every dimension's figures are the truth (each topic's partitions are consumed at
    their own pace, so one dimension being right says nothing of the others)."""
    for by in DIMENSIONS:
        try:
            assert_true_figures(await report(client, by), h.truth[by])
        except AssertionError:
            return False
    return True


async def test_the_api_the_cli_and_the_gauges_report_the_true_conversion_and_a_rebuild_too(
    reporting, kafka_bootstrap, topics, settings_for
) -> None:
    client, service, h = reporting
    await wait_until(lambda: holds_history(client, h), "the true figures from the API", 30)

    async def cli_agrees() -> bool:
        span = ReadRange(since=SINCE, until=UNTIL)
        got = await conversion.read_report(kafka_bootstrap, topics, span, "speed_to_lead", utcnow())
        # The monitor's own clocks publish on leads.sla while this runs: read both again.
        return got == await report(client, "speed_to_lead")

    await wait_until(cli_agrees, "baton funnel --by to give the API's figures", 20)

    await service.reporting.refresh_gauges()
    leads = REGISTRY.get_sample_value("baton_sla_reporting_leads", {"stage": "leads"})
    won = REGISTRY.get_sample_value("baton_sla_reporting_leads", {"stage": "won"})
    assert (leads, won) == (40, 9)  # the week's 37 and 6, and the 3 early leads, all won
    fast = {"step": "sql_to_won", "speed_to_lead": "under_5m"}
    truth = h.truth["speed_to_lead"]["under_5m"]
    assert REGISTRY.get_sample_value("baton_sla_reporting_conversion_ratio", fast) == pytest.approx(
        truth["won"] / truth["sql"]
    )

    # A damaged store is rebuilt from the topics while the monitor runs.
    async with service.engine.begin() as conn:
        await conn.execute(text("DELETE FROM reporting.journeys WHERE lead_id LIKE 'google-%'"))
    assert "google" not in {g.key for g in (await report(client, "source")).groups}
    folded = await rebuild(settings_for(BATON_ADMIN_TOKEN=ADMIN))
    assert folded >= len(h.records)
    for by in DIMENSIONS:
        assert_true_figures(await report(client, by), h.truth[by])


async def test_bad_parameters_are_problems_and_a_token_is_required(settings_for) -> None:
    # Refused before the store is asked: the monitor need not run.
    app = create_app(settings_for(BATON_ADMIN_TOKEN=ADMIN))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sla") as client:
        await _refused(client)


async def _refused(client: httpx.AsyncClient) -> None:
    url = "/v1/reports/conversion"
    bad_by = await client.get(url, params={"by": "colour"}, headers=AUTH)
    assert bad_by.status_code == 422
    assert bad_by.headers["content-type"].startswith("application/problem+json")
    assert [e["path"] for e in bad_by.json()["errors"]] == ["query.by"]
    bad_since = await client.get(url, params={"since": "last tuesday"}, headers=AUTH)
    assert bad_since.status_code == 422
    assert [e["path"] for e in bad_since.json()["errors"]] == ["query.since"]
    negative = await client.get(url, params={"mql_target_per_day": "-1"}, headers=AUTH)
    assert negative.status_code == 422
    assert (await client.get(url)).status_code == 401
