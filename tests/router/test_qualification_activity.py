"""A rep's ``qualified`` activity at the router API names its framework: a built-in
framework's fields are checked (a 422 problem naming the bad field), a custom framework
(defined in the scorer's rules) is taken as slugs, and the record on leads.activity
carries the framework and its fields."""

from __future__ import annotations

import pytest

from tests.router import test_router_api as base
from tests.router.test_router_api import Api, feed, next_delivery, transition
from tests.support.kafka import wait_for_record

pytestmark = pytest.mark.integration

api = base.api
receiver = base.receiver


async def test_qualified_fields_must_belong_to_the_named_framework(
    api: Api, producer, receiver, kafka_bootstrap
) -> None:
    ada = await api.rep(receiver, "Ada")
    token = (await api.call("POST", f"/v1/reps/{ada['id']}/token", expect=201)).json()["token"]
    sql = transition()
    await feed(api, producer, sql)
    await next_delivery(receiver)
    url = f"/v1/leads/{sql.lead_id}/activity"

    refused = [
        (
            {"kind": "qualified", "framework": "meddic", "fields": ["champion", "budget"]},
            "body.fields",
            "unknown field(s) 'budget'; meddic has metrics, economic_buyer, decision_criteria,"
            " decision_process, identify_pain, champion",
        ),
        (
            {"kind": "qualified", "fields": ["metrics"]},  # no framework: bant
            "body.fields",
            "unknown field(s) 'metrics'; bant has budget",
        ),
        (
            {"kind": "qualified", "framework": "Big Deal", "fields": ["pain"]},
            "body.framework",
            "'Big Deal' is no framework: use bant, meddic, meddpicc, champ, gpctba",
        ),
        (
            {"kind": "qualified", "framework": "spiced", "fields": ["pain", "Critical Event"]},
            "body.fields",
            "unknown field(s) 'Critical Event'; fields are slugs",
        ),
        (
            {"kind": "qualified", "framework": "champ", "bant": ["budget"]},
            "body",
            "'bant' holds BANT fields; with framework 'champ' use 'fields'",
        ),
        ({"kind": "won", "framework": "meddic"}, "body", "'framework' goes only with kind"),
        ({"kind": "qualified", "framework": "meddic"}, "body", "'qualified' needs 'bant' or"),
    ]
    for body, path, words in refused:
        problem = (await api.call("POST", url, token=token, json=body, expect=422)).json()
        [error] = problem["errors"]
        assert (error["path"], words in error["message"]) == (path, True), problem
        assert path in problem["detail"]

    sent = {
        "meddic": ["metrics", "champion", "metrics"],
        "spiced": ["situation", "critical_event"],  # custom: the scorer's rules define it
    }
    ids = {}
    for framework, fields in sent.items():
        body = {"kind": "qualified", "framework": framework, "fields": fields}
        response = await api.call("POST", url, token=token, json=body, expect=202)
        ids[response.json()["activity_id"]] = framework
    seen = await wait_for_record(
        kafka_bootstrap,
        api.topics.activity,
        lambda r: r["activity_id"] == response.json()["activity_id"],
    )
    records = {ids[r["activity_id"]]: r for r in seen if r["activity_id"] in ids}
    assert records["meddic"]["fields"] == ["metrics", "champion"]
    assert records["spiced"]["fields"] == ["situation", "critical_event"]
    assert {r["framework"] for r in records.values()} == {"meddic", "spiced"}
    assert all(r["bant"] == [] and r["kind"] == "qualified" for r in records.values())
