"""A rep's token acts only on the rep's current assignment (real Kafka and PostgreSQL):
after an SLA breach re-assigned the lead, the previous assignee can neither mark it
contacted, reject it nor backdate a touch (409), and an ``assignment_id`` that is not the
caller's is a 403; the new assignee acts as usual and only its activity is recorded."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from baton_shared.clock import utcnow
from tests.router import test_router_api as base
from tests.router.test_one_click import activities, assigned, pool_for_everyone
from tests.router.test_router_api import Api, breach, next_delivery

pytestmark = pytest.mark.integration

api = base.api
receiver = base.receiver


async def token_of(api: Api, rep: dict) -> str:
    return (await api.call("POST", f"/v1/reps/{rep['id']}/token", expect=201)).json()["token"]


async def test_a_previous_assignee_cannot_act_after_the_lead_moved_on(
    api: Api, producer, receiver, kafka_bootstrap: str
) -> None:
    ada, bob = await api.rep(receiver, "Ada"), await api.rep(receiver, "Bob")
    await pool_for_everyone(api, [ada["id"], bob["id"]])
    tokens = {ada["id"]: await token_of(api, ada), bob["id"]: await token_of(api, bob)}
    first = await assigned(api, producer, receiver)
    await breach(api, producer, first)
    moved = {}
    for _ in range(2):  # lead.taken_back to the first rep, lead.assigned to the other
        payload = orjson.loads((await next_delivery(receiver)).body)
        moved[payload["type"]] = payload["data"]
    second = moved["lead.assigned"]
    assert second["rep_id"] != first["rep_id"]
    url = f"/v1/leads/{first['lead_id']}/activity"
    old, new = tokens[first["rep_id"]], tokens[second["rep_id"]]

    backdated = (utcnow() - timedelta(hours=1)).isoformat()
    for body in (
        {"kind": "contacted"},
        {"kind": "rejected", "reason": "not mine any more"},
        {"kind": "contacted", "occurred_at": backdated},
        {"kind": "contacted", "assignment_id": first["assignment_id"]},
    ):
        refused = await api.call("POST", url, token=old, json=body, expect=409)
        assert refused.headers["content-type"] == "application/problem+json"
        assert "no longer" in refused.json()["detail"], body

    foreign = await api.call(
        "POST", url, token=new, json={"kind": "contacted", "assignment_id": first["assignment_id"]}
    )
    assert foreign.status_code == 403, foreign.text
    assert [e["path"] for e in foreign.json()["errors"]] == ["body.assignment_id"]
    assert "not one of yours" in foreign.json()["detail"]

    ok = await api.call("POST", url, token=new, json={"kind": "contacted"}, expect=202)
    recorded = await activities(api, kafka_bootstrap, first["lead_id"])
    assert [(r["rep_id"], r["assignment_id"]) for r in recorded] == [
        (second["rep_id"], second["assignment_id"])
    ]
    assert recorded[0]["activity_id"] == ok.json()["activity_id"]
