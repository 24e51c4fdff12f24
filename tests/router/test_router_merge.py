"""A lead merged into another, on a running router: the survivor keeps the merged lead's
rep whatever order the merge record and the survivor's merge transition come in, never a
second rep; lookups and activity by the merged-away id act on the survivor."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from baton_shared.schemas import LeadMerged
from tests.router import test_router_api as base
from tests.router.test_router_api import (
    Api,
    feed,
    next_delivery,
    orjson_data,
    routed_status,
    transition,
    wait_until,
)
from tests.support.kafka import wait_committed, wait_for_record

pytestmark = pytest.mark.integration

api = base.api
receiver = base.receiver


async def assigned(api: Api, lead_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The lead's first assignment (id, rep), once routing made it."""
    sql = "SELECT id, rep_id FROM router.assignments WHERE lead_id = :l"
    [row] = await wait_until(lambda: api.query(sql, l=lead_id), f"an assignment of {lead_id}")
    return row


async def merge(api: Api, producer: AIOKafkaProducer, merged: str, survivor: str) -> None:
    record = LeadMerged(
        merge_id=uuid.uuid4().hex,
        merged_id=merged,
        survivor_id=survivor,
        occurred_at=datetime.now(UTC),
    )
    sent = await producer.send_and_wait(
        api.topics.merges, record.to_bytes(), key=survivor.encode()
    )
    await wait_committed(
        api.service.settings.kafka_bootstrap_servers, api.topics.group("baton-router-merges"), sent
    )


async def fed(api: Api, producer: AIOKafkaProducer, t, status: str) -> None:  # type: ignore[no-untyped-def]
    await feed(api, producer, t)

    async def routed() -> bool:
        return await routed_status(api, t) == status

    await wait_until(routed, f"transition {status}")


def carried_over(merged: str, survivor: str):  # type: ignore[no-untyped-def]
    """The survivor's transition a merge causes when the merged lead was further along."""
    return transition(
        survivor,
        trigger_event="merge",
        trigger_event_id=f"merge:{merged}",
        reason=f"lead {merged} merged into {survivor}: stage sql carried over",
    )


async def open_leads(api: Api) -> dict[str, int]:
    return dict(await api.query("SELECT CAST(id AS text), open_leads FROM router.reps"))


@pytest.mark.parametrize("merge_first", [True, False], ids=["record-first", "transition-first"])
async def test_the_survivor_takes_the_merged_leads_rep_whatever_the_order(
    api: Api, producer, receiver, merge_first: bool
) -> None:
    await api.rep(receiver, "Ada")
    await api.rep(receiver, "Bob")  # next in turn: a second assignment would be his
    x, y = f"x-{uuid.uuid4().hex[:8]}", f"y-{uuid.uuid4().hex[:8]}@acme.example"
    await feed(api, producer, transition(x))
    assignment_id, rep_id = await assigned(api, x)
    if merge_first:
        await merge(api, producer, x, y)
        await fed(api, producer, carried_over(x, y), "merged")
    else:
        await fed(api, producer, carried_over(x, y), "merged")
        await merge(api, producer, x, y)

    rows = await api.query("SELECT id, lead_id, rep_id, status FROM router.assignments")
    assert rows == [(assignment_id, y, rep_id, "open")]
    assert sorted((await open_leads(api)).values()) == [0, 1]
    assert (await open_leads(api))[str(rep_id)] == 1

    page = (await api.call("GET", f"/v1/leads/{x}/assignments", expect=200)).json()
    assert [(a["assignment_id"], a["lead_id"]) for a in page["items"]] == [(str(assignment_id), y)]
    done = await api.call(
        "POST", f"/v1/leads/{x}/activity", json={"kind": "contacted"}, expect=202
    )
    assert done.json()["lead_id"] == y
    seen = await wait_for_record(
        api.service.settings.kafka_bootstrap_servers,
        api.topics.activity,
        lambda r: r["activity_id"] == done.json()["activity_id"],
    )
    assert (seen[-1]["lead_id"], seen[-1]["assignment_id"]) == (y, str(assignment_id))
    assert (await open_leads(api))[str(rep_id)] == 0


async def test_when_both_leads_are_assigned_the_survivors_assignment_stays(
    api: Api, producer, receiver
) -> None:
    await api.rep(receiver, "Ada")
    await api.rep(receiver, "Bob")
    x, y = f"x-{uuid.uuid4().hex[:8]}", f"y-{uuid.uuid4().hex[:8]}"
    await feed(api, producer, transition(y))
    y_assignment, y_rep = await assigned(api, y)
    await feed(api, producer, transition(x))  # the newer assignment
    x_assignment, _ = await assigned(api, x)
    await merge(api, producer, x, y)

    rows = await api.query("SELECT id, lead_id, status FROM router.assignments ORDER BY status")
    assert rows == [(x_assignment, y, "merged"), (y_assignment, y, "open")]
    assert sum((await open_leads(api)).values()) == 1
    assert (await open_leads(api))[str(y_rep)] == 1
    while (told := await next_delivery(receiver)).headers["webhook-id"] != (
        f"msg_taken_back_{x_assignment}"
    ):
        pass  # the two lead.assigned first
    data = orjson_data(told)
    assert (data["lead_id"], data["reason"]) == (x, "lead_merged")
    assert data["reassigned_to"] == str(y_rep)
    # A transition of the merged-away id consumed late is not routed.
    await fed(api, producer, transition(x), "merged")
    assert len(await api.query("SELECT id FROM router.assignments")) == 2
    # The rep's action lands on the assignment that stayed open, not the newer closed one.
    await api.call("POST", f"/v1/leads/{x}/activity", json={"kind": "contacted"}, expect=202)
    assert await api.query(
        "SELECT status FROM router.assignments WHERE id = :i", i=y_assignment
    ) == [("contacted",)]
    assert sum((await open_leads(api)).values()) == 0
