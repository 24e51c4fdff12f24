"""Accounts on a real worker and broker: two leads of one company, each below the lead MQL
threshold, together make their account engaged — one AccountTransition naming both on
accounts.transitions; GET /v1/accounts/{account_id} shows it, the lead lookup names it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from baton_scorer.rules import load_rules
from tests.scorer.worker import event, produce, rules_worker_env, start_worker, wait_until
from tests.support.kafka import read_all, wait_for_record

pytestmark = pytest.mark.integration

TOKEN = "account-test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RULES = """
name: account-test
thresholds: {mql: 50, sql: 100}
engagement:
  half_life_days: 14
  pages: {pricing: 30, docs: 10}
accounts:
  thresholds: {engaged: 60, sales_ready: 150}
  fit:
    industry: {saas: 5}
"""


async def get(http: httpx.AsyncClient, path: str, key: str, **headers: str) -> httpx.Response:
    return await http.get(f"{path}/{quote(key, safe='')}", headers=headers or AUTH)


async def test_two_leads_below_mql_make_their_account_engaged(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env, rules_file = await rules_worker_env(kafka_bootstrap, tmp_path, RULES)
    env |= {"BATON_ADMIN_TOKEN": TOKEN}
    prefix = env["BATON_TOPIC_PREFIX"]
    worker = start_worker(env, tmp_path / "scorer.log")
    try:
        now = datetime.now(UTC)
        company = {"id": "crm-0042", "website": "https://www.acme.example", "industry": "SaaS"}
        await produce(
            kafka_bootstrap,
            f"{prefix}leads.events",
            [
                # Ada's company is known only from a group call (as ingest normalises it).
                event(
                    "g1",
                    "ada",
                    "group",
                    now,
                    user_id="ada",
                    group_id="crm-0042",
                    traits={"company": company},
                ),
                event("a1", "ada", "page", now, user_id="ada", page_category="pricing"),
                # Bob is known by his work email: 40 points, below MQL too.
                event(
                    "b1",
                    "bob@acme.example",
                    "page",
                    now + timedelta(seconds=1),
                    email="bob@acme.example",
                    page_category="pricing",
                ),
                event(
                    "b2",
                    "bob@acme.example",
                    "page",
                    now + timedelta(seconds=1),
                    email="bob@acme.example",
                    page_category="docs",
                ),
            ],
        )
        topic = f"{prefix}accounts.transitions"
        seen = await wait_for_record(kafka_bootstrap, topic, lambda t: True, 60)
        moved = seen[-1]
        assert (moved["account_id"], moved["from_stage"], moved["to_stage"]) == (
            "acme.example",
            "cold",
            "engaged",
        )
        assert {lead["lead_id"] for lead in moved["leads"]} == {"ada", "bob@acme.example"}
        assert moved["fit"] == 5 and moved["engagement"] == pytest.approx(70, abs=0.01)
        assert moved["rules_version"] == load_rules(rules_file).version

        async with httpx.AsyncClient(base_url=worker.url) as http:
            account: dict[str, Any] = {}

            async def shows_both_leads() -> bool:
                response = await get(http, "/v1/accounts", "acme.example")
                account.update(response.json() if response.status_code == 200 else {})
                return len(account.get("leads", ())) == 2

            await wait_until(shows_both_leads, 30, "the account lookup to show both leads")
            assert account["stage"] == "engaged"
            assert account["score"] == pytest.approx(75, abs=0.01)
            assert [lead["lead_id"] for lead in account["leads"]] == ["bob@acme.example", "ada"]
            assert account["traits"]["industry"] == "SaaS"
            by_url = await get(http, "/v1/accounts", "https://www.Acme.example/")
            assert by_url.json()["account_id"] == "acme.example"

            for key in ("ada", "bob@acme.example"):
                lead = (await get(http, "/v1/leads", key)).json()
                assert lead["stage"] == "new" and lead["account"] == "acme.example"

            assert (await get(http, "/v1/accounts", "unknown.example")).status_code == 404
            bad = await get(http, "/v1/accounts", "acme\x00example")
            assert bad.status_code == 422
            assert bad.json()["errors"][0]["path"] == "path.account_id"
            refused = await get(http, "/v1/accounts", "acme.example", Authorization="Bearer no")
            assert refused.status_code == 401
        # One crossing, one transition.
        assert len(await read_all(kafka_bootstrap, topic)) == 1
    finally:
        worker.stop()
