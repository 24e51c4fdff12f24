"""Outcomes that change a lead's life after its assignment, on a running router and SLA
monitor (real Kafka, real PostgreSQL, local receivers): a recycled lead frees its rep's
capacity, the rep gets a signed ``lead.recycled`` (and a Slack message), the lead is
enrolled in nurture, and its SLA clock is cancelled and never breaches. An ``at_risk``
clock nudges the rep (webhook and Block Kit with the one-click links); a breach reaches
the pool's manager on Slack."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from baton_devstack.webhook_sink import WebhookReceiver
from baton_shared.schemas import ReasonKind, SlaEvent, SlaMeasure, SlaStatus, Stage
from baton_sla_monitor.config import SlaSettings
from baton_sla_monitor.service import SlaService
from tests.router import test_router_api as base
from tests.router.test_one_click import pool_for_everyone
from tests.router.test_router_api import (
    Api,
    breach,
    feed,
    next_delivery,
    orjson_data,
    routed_status,
    transition,
    verified,
    wait_until,
)
from tests.support.kafka import read_all
from tests.support.slack import checked

pytestmark = pytest.mark.integration

api = base.api
receiver = base.receiver


@pytest.fixture
async def sla(api: Api, kafka_bootstrap: str, pg_cluster, unique_name: str) -> AsyncIterator:
    """An SLA monitor on the router's topics (its own database); the test drives its
    sweep with an explicit ``now``."""
    service = SlaService(
        SlaSettings(
            KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
            DATABASE_URL=pg_cluster.create_database(f"{unique_name}sla"),
            BATON_TOPIC_PREFIX=f"{unique_name}.",
            BATON_ENV="test",
            BATON_SLA_TICK_SECONDS="3600",  # no sweep of its own: the test fires clocks
        )
    )
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def clock_statuses(sla: SlaService, lead_id: str) -> dict[str, str]:
    return {c.measure: c.status for c in await sla.reports.lead_clocks(lead_id, None, 1000)}


async def open_leads(api: Api, rep_id: str) -> int:
    [(n,)] = await api.query(
        "SELECT open_leads FROM router.reps WHERE id = CAST(:r AS uuid)", r=rep_id
    )
    return n


async def test_recycled_lead_frees_the_rep_tells_them_nurtures_it_and_cancels_its_clock(
    api: Api, producer, receiver, sla: SlaService, kafka_bootstrap: str
) -> None:
    with WebhookReceiver() as slack:
        ada = await api.rep(receiver, "Ada", capacity=1, slack_webhook_url=f"{slack.url}/ada")
        track = (
            await api.call(
                "POST",
                "/v1/nurture-tracks",
                expect=201,
                json={"name": "comeback", "position": 1, "webhook_url": f"{receiver.url}/track"},
            )
        ).json()
        sql = transition(traits={"name": "Kim Lee", "company": "Acme"})
        await feed(api, producer, sql)
        assigned = orjson_data(await next_delivery(receiver))
        await next_delivery(slack)  # the assignment's message
        await wait_until(
            lambda: _has(clock_statuses(sla, sql.lead_id), "first_touch", "open"), "rep clock"
        )
        assert await open_leads(api, ada["id"]) == 1

        gone = transition(
            sql.lead_id,
            Stage.RECYCLED,
            from_stage=Stage.SQL,
            reason="no engagement for 30 days",
            reason_kind=ReasonKind.RECYCLE,
            traits=sql.traits,
        )
        await feed(api, producer, gone)
        await feed(api, producer, gone)  # re-delivered: told once, enrolled once
        told = {d.path: d for d in [await next_delivery(receiver), await next_delivery(receiver)]}

        recycled = verified(told["/ada"], ada["webhook_secret"])
        assert recycled["type"] == "lead.recycled"
        data = recycled["data"]
        assert (data["assignment_id"], data["rep_id"], data["transition_id"]) == (
            assigned["assignment_id"], ada["id"], gone.transition_id,
        )  # fmt: skip
        assert (data["to_stage"], data["reason_kind"], data["track"]) == (
            "recycled", "recycle", "comeback",
        )  # fmt: skip
        nurture = verified(told["/track"], track["webhook_secret"])
        assert (nurture["type"], nurture["data"]["lead_id"]) == ("lead.nurture", sql.lead_id)
        message, problems = checked(await next_delivery(slack))
        assert problems == [] and "recycled" in message["text"] and "Kim Lee" in message["text"]

        [(status,)] = await api.query(
            "SELECT status FROM router.assignments WHERE id = CAST(:a AS uuid)",
            a=assigned["assignment_id"],
        )
        assert (status, await routed_status(api, gone)) == ("recycled", "nurtured")
        assert await open_leads(api, ada["id"]) == 0
        # At capacity 1, Ada can take the next SQL at once.
        await feed(api, producer, transition())
        nxt = orjson.loads((await next_delivery(receiver)).body)
        assert (nxt["type"], nxt["data"]["rep_id"]) == ("lead.assigned", ada["id"])

        await wait_until(
            lambda: _has(clock_statuses(sla, sql.lead_id), "first_touch", "cancelled"),
            "the rep clock cancelled",
        )
        await sla.clocks.fire_due(datetime.now(UTC) + timedelta(days=2))  # past every deadline
        assert (await clock_statuses(sla, sql.lead_id))["first_touch"] == "cancelled"
        events = await read_all(kafka_bootstrap, api.topics.sla, idle_s=0.5)
        mine = [e["status"] for e in events if e["lead_id"] == sql.lead_id]
        assert "cancelled" in mine and "breached" not in mine and "at_risk" not in mine


async def _has(statuses, measure: str, status: str) -> bool:  # type: ignore[no-untyped-def]
    return (await statuses).get(measure) == status


def sla_event(data: dict, status: SlaStatus, **kw: object) -> SlaEvent:
    now = datetime.now(UTC)
    return SlaEvent(
        event_id=uuid.uuid4().hex,
        clock_id=uuid.uuid4().hex,
        lead_id=data["lead_id"],
        rep_id=data["rep_id"],
        assignment_id=data["assignment_id"],
        status=status,
        started_at=now - timedelta(minutes=48),
        deadline_at=now + timedelta(minutes=12),
        at=now,
        **kw,
    )


async def test_at_risk_nudges_the_rep_and_a_breach_reaches_the_pool_manager_on_slack(
    api: Api, producer, receiver
) -> None:
    with WebhookReceiver() as slack:
        ada = await api.rep(receiver, "Ada", slack_webhook_url=f"{slack.url}/ada")
        boss = await api.rep(
            receiver, "Boss", status="offline", slack_webhook_url=f"{slack.url}/boss"
        )
        await pool_for_everyone(api, [ada["id"]], escalation="manager", manager_rep_id=boss["id"])
        await feed(api, producer, transition(traits={"name": "Kim <Lee>" * 100, "company": "Acme"}))
        assigned = orjson_data(await next_delivery(receiver))
        await next_delivery(slack)  # the assignment's message

        at_risk = sla_event(assigned, SlaStatus.AT_RISK, warning_fraction=0.8)
        for _ in range(2):  # re-delivered: one nudge
            await producer.send_and_wait(
                api.topics.sla, at_risk.to_bytes(), key=at_risk.lead_id.encode()
            )
        delivery = await next_delivery(receiver)
        nudge = verified(delivery, ada["webhook_secret"])
        assert (delivery.path, nudge["type"]) == ("/ada", "lead.sla_at_risk")
        assert nudge["data"]["assignment_id"] == assigned["assignment_id"]
        assert nudge["data"]["links"]["contacted"] == assigned["links"]["contacted"]
        sent = await next_delivery(slack)
        message, problems = checked(sent)
        assert (sent.path, problems) == ("/ada", [])
        assert "80% of the window" in orjson.dumps(message).decode()
        [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
        urls = {e["action_id"]: e["url"] for e in actions["elements"]}
        assert urls["baton_contacted"] == assigned["links"]["contacted"]

        await breach(api, producer, assigned)
        escalated = await next_delivery(receiver)
        assert (escalated.path, orjson.loads(escalated.body)["type"]) == ("/boss", "lead.escalated")
        sent = await next_delivery(slack)
        message, problems = checked(sent)
        assert (sent.path, problems) == ("/boss", [])
        body = orjson.dumps(message).decode()
        assert "SLA breached" in message["text"] and "Ada" in body and "yours to act on" in body
        assert slack.deliveries.empty() and receiver.deliveries.empty()  # one nudge only


async def test_too_few_contact_attempts_nudge_the_rep_then_tell_the_manager_and_keep_the_lead(
    api: Api, producer, receiver
) -> None:
    with WebhookReceiver() as slack:
        ada = await api.rep(receiver, "Ada")
        boss = await api.rep(
            receiver, "Boss", status="offline", slack_webhook_url=f"{slack.url}/boss"
        )
        await pool_for_everyone(api, [ada["id"]], escalation="manager", manager_rep_id=boss["id"])
        sql = transition()
        await feed(api, producer, sql)
        assigned = orjson_data(await next_delivery(receiver))
        await api.call(  # the first touch closes the assignment; the attempts go on
            "POST", f"/v1/leads/{sql.lead_id}/activity", json={"kind": "contacted"}, expect=202
        )
        counts = {"measure": SlaMeasure.ATTEMPTS, "attempts_made": 2, "attempts_required": 6}

        at_risk = sla_event(assigned, SlaStatus.AT_RISK, warning_fraction=0.8, **counts)
        await producer.send_and_wait(api.topics.sla, at_risk.to_bytes(), key=sql.lead_id.encode())
        nudge = verified(await next_delivery(receiver), ada["webhook_secret"])
        assert nudge["type"] == "lead.sla_at_risk"
        assert (nudge["data"]["measure"], nudge["data"]["attempts_made"]) == ("attempts", 2)

        breached = sla_event(assigned, SlaStatus.BREACHED, **counts)
        await producer.send_and_wait(api.topics.sla, breached.to_bytes(), key=sql.lead_id.encode())
        sent = await next_delivery(slack)
        message, problems = checked(sent)
        assert (sent.path, problems) == ("/boss", [])
        assert "Ada" in orjson.dumps(message).decode()
        [(status,)] = await api.query(
            "SELECT status FROM router.assignments WHERE id = CAST(:a AS uuid)",
            a=assigned["assignment_id"],
        )
        assert status == "contacted"  # kept by the rep: no take-back for a rep at work
        assert receiver.deliveries.empty()  # no lead.escalated, no re-assignment
