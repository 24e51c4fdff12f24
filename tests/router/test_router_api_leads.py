"""The router API on a running router, for what the lead's traits drive: territory rules
checked at the API, the lead's traits in the rep's webhook, SDR tasks on MQLs, and the
qualified (BANT) / won / lost rep actions on leads.activity."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from baton_shared.schemas import Stage
from tests.router import test_router_api as base
from tests.router.test_router_api import (
    Api,
    feed,
    next_delivery,
    no_delivery,
    orjson_data,
    routed_status,
    transition,
    verified,
    wait_until,
)
from tests.support.kafka import wait_for_record

pytestmark = pytest.mark.integration

# The running router and webhook receiver of the API tests.
api = base.api
receiver = base.receiver

GERMAN_LEAD = {
    "country": "Germany",
    "employees": 400,
    "industry": "Manufacturing",
    "title": "Head of Operations",
    "language": "de-DE",
}


async def test_rules_and_skills_that_could_never_match_are_refused_naming_the_field(
    api: Api, receiver
) -> None:
    pool = (await api.call("POST", "/v1/pools", json={"name": "emea"}, expect=201)).json()
    cases = [
        ({"field": "contry", "op": "in", "value": ["de"]}, "did you mean 'country'"),
        ({"field": "country", "op": "in", "value": ["Germny"]}, "country 'Germny'"),
        ({"field": "company_size", "op": "between", "value": [500, 50]}, "min ≤ max"),
        ({"field": "industry", "op": "gte", "value": 3}, "'gte' does not apply to 'industry'"),
    ]
    for condition, words in cases:
        response = await api.call(
            "POST",
            "/v1/rules",
            json={
                "name": "r",
                "pool_id": pool["id"],
                "conditions": [{"field": "score", "op": "gte", "value": 1}, condition],
            },
            expect=422,
        )
        [error] = response.json()["errors"]
        assert error["path"] == "body.conditions.1", error
        assert words in error["message"], (condition, error["message"])

    rep = await api.rep(receiver, skills={"countries": ["Germany", "AT"], "languages": ["DE-de"]})
    assert rep["skills"] == {"countries": ["de", "at"], "languages": ["de"]}  # canonical
    response = await api.call(
        "PATCH", f"/v1/reps/{rep['id']}", json={"skills": {"countries": ["Atlantis"]}}, expect=422
    )
    assert "Atlantis" in response.json()["errors"][0]["message"]


async def test_country_rule_routes_to_the_emea_pool_and_the_webhook_carries_the_traits(
    api: Api, producer, receiver
) -> None:
    ada = await api.rep(receiver, "Ada")
    eve = await api.rep(receiver, "Eve", skills={"languages": ["de"]})
    emea = (
        await api.call(
            "POST", "/v1/pools", json={"name": "emea", "members": [eve["id"]]}, expect=201
        )
    ).json()
    await api.call(
        "POST",
        "/v1/rules",
        expect=201,
        json={
            "name": "DACH to EMEA",
            "pool_id": emea["id"],
            "conditions": [
                {"field": "country", "op": "in", "value": ["DE", "Austria", "CH"]},
                {"field": "company_size", "op": "between", "value": [100, 999]},
            ],
        },
    )

    german = transition(email="kim@acme.de", traits=GERMAN_LEAD)
    await feed(api, producer, german)
    delivery = await next_delivery(receiver)
    payload = verified(delivery, eve["webhook_secret"])
    data = payload["data"]
    assert (delivery.path, data["pool"]) == ("/eve", "emea")
    assert data["lead"] == {
        "lead_id": german.lead_id,
        "email": "kim@acme.de",
        "domain": "acme.de",
        "traits": GERMAN_LEAD,
        "territory": {
            "country": "de",
            "region": "emea",
            "segment": "mid_market",
            "company_size": 400.0,
            "industry": "manufacturing",
            "language": "de",
            "email_domain": "acme.de",
        },
    }
    assert set(data["actions"]) >= {"accept", "reject", "contacted", "qualified", "won", "lost"}

    american = transition(traits={"country": "United States", "employees": 400})
    await feed(api, producer, american)
    data = verified(await next_delivery(receiver), ada["webhook_secret"])["data"]
    assert (data["rep_id"], data["pool"]) == (ada["id"], "default")


async def sdr_setup(api: Api, receiver, sdr_status: str = "online") -> tuple[dict, dict, dict]:
    sam = await api.rep(receiver, "Sam", status=sdr_status)
    sdrs = (
        await api.call(
            "POST", "/v1/pools", json={"name": "sdrs", "members": [sam["id"]]}, expect=201
        )
    ).json()
    track = (
        await api.call(
            "POST",
            "/v1/nurture-tracks",
            expect=201,
            json={
                "name": "emea-nurture",
                "webhook_url": f"{receiver.url}/nurture",
                "conditions": [{"field": "region", "op": "eq", "value": "emea"}],
                "sdr_pool_id": sdrs["id"],
            },
        )
    ).json()
    assert track["sdr_pool_id"] == sdrs["id"]
    return sam, sdrs, track


async def test_mql_on_a_track_with_an_sdr_pool_becomes_a_signed_sdr_task_on_assignments(
    api: Api, producer, receiver, kafka_bootstrap
) -> None:
    await api.rep(receiver, "Ada")  # an AE: never gets the MQL
    sam, _, track = await sdr_setup(api, receiver)
    mql = transition(stage=Stage.MQL, traits=GERMAN_LEAD, email="kim@acme.de")
    await feed(api, producer, mql)

    by_path = {}
    for _ in range(2):
        delivery = await next_delivery(receiver)
        by_path[delivery.path] = delivery
    assert set(by_path) == {"/nurture", "/sam"}
    assert verified(by_path["/nurture"], track["webhook_secret"])["type"] == "lead.nurture"
    task = verified(by_path["/sam"], sam["webhook_secret"])
    assert task["type"] == "lead.sdr_task"
    data = task["data"]
    assert (data["rep_id"], data["stage"], data["track"], data["pool"]) == (
        sam["id"],
        "mql",
        "emea-nurture",
        "sdrs",
    )
    assert data["lead"]["traits"] == GERMAN_LEAD
    due = datetime.fromisoformat(data["sla_due_at"]) - datetime.fromisoformat(data["assigned_at"])
    assert due == timedelta(hours=24)

    published = await wait_for_record(
        kafka_bootstrap, api.topics.assignments, lambda r: r["transition_id"] == mql.transition_id
    )
    assert (published[-1]["stage"], published[-1]["rep_id"]) == ("mql", sam["id"])
    assert await routed_status(api, mql) == "nurtured"
    leads = (await api.call("GET", f"/v1/reps/{sam['id']}/leads", expect=200)).json()["items"]
    assert [(lead["lead_id"], lead["stage"]) for lead in leads] == [(mql.lead_id, "mql")]

    # An MQL the track's conditions do not match is not enrolled: no task either.
    await feed(api, producer, transition(stage=Stage.MQL, traits={"country": "JP"}))
    await no_delivery(receiver, within=0.5)


async def test_sdr_task_waits_for_an_sdr_and_goes_out_when_one_comes_online(
    api: Api, producer, receiver
) -> None:
    sam, _, _ = await sdr_setup(api, receiver, sdr_status="away")
    mql = transition(stage=Stage.MQL, traits={"country": "FR"})
    await feed(api, producer, mql)
    assert (await next_delivery(receiver)).path == "/nurture"
    await wait_until(lambda: _status_is(api, mql, "sdr_queued"), "SDR task queued")

    await api.call(
        "PUT", f"/v1/reps/{sam['id']}/availability", json={"status": "online"}, expect=200
    )
    task = verified(await next_delivery(receiver), sam["webhook_secret"])
    assert (task["type"], task["data"]["transition_id"]) == ("lead.sdr_task", mql.transition_id)
    assert await routed_status(api, mql) == "nurtured"


async def test_an_sql_ends_the_leads_sdr_task_and_frees_the_sdr(
    api: Api, producer, receiver
) -> None:
    """Once the lead is SQL (an AE's), the SDR's task is over: the SDR is told to stop
    (``lead.taken_back``), it no longer counts against the SDR's capacity, and a task still
    waiting for an SDR is not handed out."""
    ada = await api.rep(receiver, "Ada")
    # Ada is the closers pool: the express SQLs below are hers, whoever else is free.
    await api.call(
        "POST",
        "/v1/pools",
        json={"name": "closers", "express": True, "members": [ada["id"]]},
        expect=201,
    )
    sam, _, _ = await sdr_setup(api, receiver)

    async def sam_open_leads() -> int:
        return (await api.call("GET", f"/v1/reps/{sam['id']}", expect=200)).json()["open_leads"]

    mql = transition(stage=Stage.MQL, traits={"country": "FR"})
    await feed(api, producer, mql)
    assert {(await next_delivery(receiver)).path for _ in range(2)} == {"/nurture", "/sam"}
    assert await sam_open_leads() == 1

    sql = transition(lead_id=mql.lead_id, express=True, traits={"country": "FR"})
    await feed(api, producer, sql)
    got = {d.path: d for d in [await next_delivery(receiver) for _ in range(2)]}
    assert set(got) == {"/ada", "/sam"}
    data = verified(got["/ada"], ada["webhook_secret"])["data"]
    assert data["transition_id"] == sql.transition_id
    assert await sam_open_leads() == 0
    leads = (await api.call("GET", f"/v1/reps/{sam['id']}/leads", expect=200)).json()["items"]
    assert [lead["status"] for lead in leads] == ["superseded"]
    told = verified(got["/sam"], sam["webhook_secret"])
    assert told["type"] == "lead.taken_back"
    assert (told["data"]["lead_id"], told["data"]["rep_id"], told["data"]["reason"]) == (
        mql.lead_id,
        sam["id"],
        "lead_became_sql",
    )
    assert told["data"]["assignment_id"] == leads[0]["assignment_id"]

    # A task still waiting for an SDR when the lead goes SQL is never handed out.
    await api.call("PUT", f"/v1/reps/{sam['id']}/availability", json={"status": "away"}, expect=200)
    waiting = transition(stage=Stage.MQL, traits={"country": "FR"})
    await feed(api, producer, waiting)
    assert (await next_delivery(receiver)).path == "/nurture"
    await wait_until(lambda: _status_is(api, waiting, "sdr_queued"), "SDR task queued")
    await feed(
        api, producer, transition(lead_id=waiting.lead_id, express=True, traits={"country": "FR"})
    )
    assert (await next_delivery(receiver)).path == "/ada"
    await wait_until(lambda: _status_is(api, waiting, "superseded"), "SDR task superseded")
    await api.call(
        "PUT", f"/v1/reps/{sam['id']}/availability", json={"status": "online"}, expect=200
    )
    await no_delivery(receiver, within=0.5)


async def _status_is(api: Api, t, status: str) -> bool:  # type: ignore[no-untyped-def]
    return await routed_status(api, t) == status


async def test_unknown_sdr_pool_is_refused(api: Api, receiver) -> None:
    response = await api.call(
        "POST",
        "/v1/nurture-tracks",
        json={
            "name": "t",
            "webhook_url": f"{receiver.url}/t",
            "sdr_pool_id": "00000000-0000-0000-0000-000000000001",
        },
        expect=409,
    )
    assert response.json()["errors"][0]["path"] == "body.sdr_pool_id"


async def test_rep_marks_a_lead_qualified_with_bant_then_won_or_lost(
    api: Api, producer, receiver, kafka_bootstrap
) -> None:
    ada = await api.rep(receiver, "Ada")
    bob = await api.rep(receiver, "Bob", status="away")
    token = (await api.call("POST", f"/v1/reps/{ada['id']}/token", expect=201)).json()["token"]
    bob_token = (await api.call("POST", f"/v1/reps/{bob['id']}/token", expect=201)).json()["token"]
    sql = transition()
    await feed(api, producer, sql)
    assignment_id = orjson_data(await next_delivery(receiver))["assignment_id"]
    url = f"/v1/leads/{sql.lead_id}/activity"

    refused = [
        ({"kind": "qualified"}, "'qualified' needs 'bant'"),
        ({"kind": "qualified", "bant": ["budget", "vibes"]}, "unknown field(s) 'vibes'"),
        ({"kind": "won", "bant": ["budget"]}, "'bant' goes only with kind 'qualified'"),
    ]
    for body, words in refused:
        response = await api.call("POST", url, token=token, json=body, expect=422)
        assert words in response.json()["errors"][0]["message"], response.json()
    await api.call("POST", url, token=bob_token, json={"kind": "won"}, expect=404)

    qualified = await api.call(
        "POST",
        url,
        token=token,
        json={"kind": "qualified", "bant": ["budget", "authority", "budget"]},
        expect=202,
    )
    won = await api.call("POST", url, token=token, json={"kind": "won"}, expect=202)
    lost = await api.call(  # the admin may record for the assigned rep
        "POST", url, json={"kind": "lost", "reason": "went with a competitor"}, expect=202
    )
    ids = {r.json()["activity_id"]: r.json()["kind"] for r in (qualified, won, lost)}
    # Keyed by lead, so in order on one partition: reading up to the last one sees all.
    seen = await wait_for_record(
        kafka_bootstrap,
        api.topics.activity,
        lambda r: r["activity_id"] == lost.json()["activity_id"],
    )
    records = {r["kind"]: r for r in seen if r["activity_id"] in ids}
    assert records["qualified"]["bant"] == ["budget", "authority"]
    assert records["won"]["bant"] == []
    assert records["lost"]["reason"] == "went with a competitor"
    for record in records.values():
        assert (record["rep_id"], record["assignment_id"]) == (ada["id"], assignment_id)
    me = (await api.call("GET", "/v1/me", token=token, expect=200)).json()
    assert me["open_leads"] == 0  # a qualified lead was worked: no longer counts


async def test_breached_sdr_task_goes_to_the_next_sdr_of_the_pool(
    api: Api, producer, receiver
) -> None:
    sam, sdrs, _ = await sdr_setup(api, receiver)
    sue = await api.rep(receiver, "Sue")
    await api.call(
        "PATCH", f"/v1/pools/{sdrs['id']}", json={"members": [sam["id"], sue["id"]]}, expect=200
    )
    await api.rep(receiver, "Ada")  # not in the SDR pool: never takes the task
    await feed(api, producer, transition(stage=Stage.MQL, traits={"country": "FR"}))
    deliveries = {d.path: d for d in [await next_delivery(receiver) for _ in range(2)]}
    [first] = [orjson_data(d) for path, d in deliveries.items() if path != "/nurture"]
    assert first["stage"] == "mql"

    await base.breach(api, producer, first)

    got = {}
    for _ in range(2):
        data = orjson_data(delivery := await next_delivery(receiver))
        got[
            verified(delivery, {sam["id"]: sam, sue["id"]: sue}[data["rep_id"]]["webhook_secret"])[
                "type"
            ]
        ] = data
    other = sue["id"] if first["rep_id"] == sam["id"] else sam["id"]
    assert got["lead.taken_back"]["rep_id"] == first["rep_id"]
    task = got["lead.sdr_task"]
    assert (task["rep_id"], task["stage"], task["pool"], task["reassignments"]) == (
        other,
        "mql",
        "sdrs",
        1,
    )
    assert task["track"] == "emea-nurture"
