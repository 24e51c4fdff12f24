"""The monitor on the real broker and database with short real windows: warnings before
the deadline, re-assignment restarts the clock, per-team policy from a file, reports."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiokafka import AIOKafkaProducer

from baton_shared.ids import stable_id
from baton_shared.schemas import Activity, ActivityKind, Assignment
from baton_shared.topics import Topics
from tests.support.kafka import read_all, wait_for_record
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def now() -> datetime:
    return datetime.now(UTC)


def assignment(
    assigned_at: datetime,
    express: bool = True,
    lead_id: str | None = None,
    rep_id: str | None = None,
    pool: str | None = None,
    qualified_seconds_before: float = 0.25,
) -> Assignment:
    return Assignment(
        assignment_id=str(uuid.uuid4()),
        transition_id=uuid.uuid4().hex,
        lead_id=lead_id or f"lead-{uuid.uuid4().hex[:8]}",
        rep_id=rep_id or f"rep-{uuid.uuid4().hex[:6]}",
        strategy="round_robin",
        express=express,
        qualified_at=assigned_at - timedelta(seconds=qualified_seconds_before),
        assigned_at=assigned_at,
        pool=pool,
    )


def contacted(a: Assignment, at: datetime) -> Activity:
    return Activity(
        activity_id=uuid.uuid4().hex,
        lead_id=a.lead_id,
        rep_id=a.rep_id,
        kind=ActivityKind.CONTACTED,
        occurred_at=at,
    )


def clock_id(a: Assignment) -> str:
    return stable_id("clock", a.assignment_id)


async def publish(producer: AIOKafkaProducer, topics: Topics, record: Assignment | Activity):
    topic = topics.assignments if isinstance(record, Assignment) else topics.activity
    return await producer.send_and_wait(topic, record.to_bytes(), key=record.lead_id.encode())


async def events_until(
    kafka_bootstrap: str, topics: Topics, a: Assignment, status: str, timeout: float = 15
) -> list[dict[str, Any]]:
    seen = await wait_for_record(
        kafka_bootstrap,
        topics.sla,
        lambda r: r["clock_id"] == clock_id(a) and r["status"] == status,
        timeout=timeout,
    )
    return [e for e in seen if e["clock_id"] == clock_id(a)]


async def test_warnings_at_half_and_eighty_percent_then_breach_each_within_a_second(
    start_sla, producer, topics, kafka_bootstrap
) -> None:
    await start_sla(BATON_SLA_EXPRESS_SQL_SECONDS="3")
    a = assignment(now())
    await publish(producer, topics, a)

    events = await events_until(kafka_bootstrap, topics, a, "breached")

    assert [(e["status"], e["warning_fraction"]) for e in events] == [
        ("started", None),
        ("at_risk", 0.5),
        ("at_risk", 0.8),
        ("breached", None),
    ]
    for event in events[1:]:
        due = a.assigned_at + timedelta(seconds=3 * (event["warning_fraction"] or 1))
        fired = datetime.fromisoformat(event["at"])
        assert timedelta(0) <= fired - due < timedelta(seconds=1), event
    breached = events[-1]
    assert (breached["lead_id"], breached["rep_id"], breached["assignment_id"]) == (
        a.lead_id,
        a.rep_id,
        a.assignment_id,
    )


async def test_reassignment_closes_the_old_clock_and_restarts_for_the_new_rep(
    start_sla, producer, topics, kafka_bootstrap
) -> None:
    service = await start_sla(BATON_SLA_EXPRESS_SQL_SECONDS="2")
    first = assignment(now())
    await publish(producer, topics, first)
    await events_until(kafka_bootstrap, topics, first, "started")
    second = assignment(now(), lead_id=first.lead_id)
    await publish(producer, topics, second)
    await events_until(kafka_bootstrap, topics, second, "started")
    await publish(producer, topics, contacted(second, second.assigned_at + timedelta(seconds=0.5)))

    met = (await events_until(kafka_bootstrap, topics, second, "met"))[-1]
    assert met["rep_id"] == second.rep_id
    assert met["elapsed_seconds"] == pytest.approx(0.5)
    expected = [(first.assignment_id, "reassigned"), (second.assignment_id, "met")]

    async def stored() -> bool:  # the event goes out just before its transaction commits
        clocks = await service.reports.lead_clocks(first.lead_id, None, 100)
        return [(c.assignment_id, c.status) for c in clocks] == expected

    await wait_until(stored, "the reassigned and the met clock in the database", 10)
    # Once a control clock with the same deadline has breached, the sweep has passed the
    # first clock's deadline too: a closed clock never fires.
    control = assignment(first.assigned_at)
    await publish(producer, topics, control)
    await events_until(kafka_bootstrap, topics, control, "breached")
    events = await read_all(kafka_bootstrap, topics.sla, idle_s=0.5)
    assert [e["status"] for e in events if e["clock_id"] == clock_id(first)] == ["started"]


async def test_team_window_and_business_hours_come_from_the_policy_file(
    start_sla, producer, topics, kafka_bootstrap, tmp_path: Path
) -> None:
    policy = tmp_path / "sla.yaml"
    policy.write_text(
        "name: teams-test\n"
        "warn_at_fractions: []\n"
        "assign_seconds: 0.1\n"
        "calendars:\n"
        "  never-open:\n"
        "    timezone: Europe/Berlin\n"
        "    working_days: [mon]\n"
        "    hours: ['00:00-00:01']\n"
        "    holidays: []\n"
        "teams:\n"
        "  fast: {first_touch_seconds: {express_sql: 1}}\n"
        "  office: {calendar: never-open}\n"
    )
    service = await start_sla(BATON_SLA_POLICY_FILE=str(policy))
    fast = assignment(now(), pool="fast")
    office = assignment(now(), pool="office")
    await publish(producer, topics, fast)
    await publish(producer, topics, office)

    events = await events_until(kafka_bootstrap, topics, fast, "breached", timeout=10)
    started, breached = events
    assert started["team"] == "fast" and started["window_seconds"] == 1
    assert started["policy_version"] == service.policy.version
    assert started["policy_version"].startswith("teams-test@")
    assert started["system_delay_seconds"] == pytest.approx(0.25)
    assert started["assign_target_seconds"] == 0.1
    assert datetime.fromisoformat(breached["deadline_at"]) == fast.assigned_at + timedelta(
        seconds=1
    )
    (clock,) = await service.reports.lead_clocks(office.lead_id, None, 100)
    # 300 working seconds at one minute a week: five Mondays from now.
    assert clock.calendar == "never-open"
    assert clock.deadline_at - office.assigned_at > timedelta(days=27)
    assert clock.deadline_at.astimezone(ZoneInfo("Europe/Berlin")).weekday() == 0


async def test_reports_list_at_risk_and_breached_and_compliance_per_rep_and_team(
    start_sla, producer, topics, kafka_bootstrap
) -> None:
    service = await start_sla(BATON_SLA_EXPRESS_SQL_SECONDS="1", BATON_SLA_SQL_SECONDS="60")
    t0 = now()
    ada_met = assignment(t0, rep_id="ada", pool="east")
    ada_breached = assignment(t0, rep_id="ada", pool="east")
    bob_met = assignment(t0, rep_id="bob", pool="west")
    bob_at_risk = assignment(t0 - timedelta(seconds=40), express=False, rep_id="bob", pool="west")
    for a in (ada_met, ada_breached, bob_met, bob_at_risk):
        await publish(producer, topics, a)
    await publish(producer, topics, contacted(ada_met, t0 + timedelta(seconds=0.2)))
    await publish(producer, topics, contacted(bob_met, t0 + timedelta(seconds=0.6)))
    await events_until(kafka_bootstrap, topics, ada_breached, "breached")
    await events_until(kafka_bootstrap, topics, bob_at_risk, "at_risk")

    at_risk = await service.reports.at_risk(limit=10)
    assert [c.assignment_id for c in at_risk] == [bob_at_risk.assignment_id]
    breached = await service.reports.breached(t0 - timedelta(minutes=1), now(), limit=10)
    assert [c.assignment_id for c in breached] == [ada_breached.assignment_id]

    window = (t0 - timedelta(minutes=5), now() + timedelta(seconds=1))
    by_rep = {r.key: r for r in await service.reports.compliance(*window, by="rep")}
    assert (by_rep["ada"].met, by_rep["ada"].breached, by_rep["ada"].compliance_ratio) == (
        1,
        1,
        0.5,
    )
    assert by_rep["ada"].speed_to_lead_seconds.p50 == pytest.approx(0.2)
    assert by_rep["ada"].time_to_assign_seconds.p50 == pytest.approx(0.25)
    assert (by_rep["bob"].met, by_rep["bob"].open, by_rep["bob"].compliance_ratio) == (1, 1, 1.0)
    by_team = {r.key: r for r in await service.reports.compliance(*window, by="team")}
    assert set(by_team) == {"east", "west"}
    assert by_team["west"].speed_to_lead_seconds.p99 == pytest.approx(0.6)
