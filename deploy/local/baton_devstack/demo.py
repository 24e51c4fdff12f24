"""``make run``'s show: demo reps with a local webhook sink, and traffic that qualifies leads.

What a newcomer sees in the terminal, as it happens:
- leads moving to MQL and SQL (read from ``leads.transitions``), one of them by
  clicking links in an email (SendGrid's Event Webhook, posted to ingest),
- that reader then signing in on the site as a user id whose identify carries the
  address: the scorer merges the email's lead into the user's (the merge transition,
  then the scorer's lookup of the address answering with the user's lead),
- each assignment webhook arriving at a demo rep, its Standard Webhooks
  signature verified with the ``standardwebhooks`` library,
- SLA clocks starting, being met (the demo rep "calls" some leads) or breaching
  (read from ``leads.sla``).
Only 127.0.0.1 is contacted. Runs until cancelled (Ctrl-C).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from baton_devstack.webhook_sink import Delivery, WebhookReceiver
from baton_shared.kafka_connection import client_options
from baton_shared.settings import ServiceSettings

SINK_PORT = 8099
DEMO_REPS = (("Ada (demo)", "ada@example.com"), ("Grace (demo)", "grace@example.com"))
PAGES = ("/blog/lead-scoring", "/docs/quickstart", "/product/routing", "/pricing", "/careers")
LEADS = [f"demo-lead-{n:02d}" for n in range(1, 13)]


def say(text: str) -> None:
    print(text, flush=True)


class Demo:
    def __init__(self, env: dict[str, str], state_dir: Path, urls: dict[str, str]):
        self.env, self.state_dir, self.urls = env, state_dir, urls
        self.admin = {"Authorization": f"Bearer {env['BATON_ADMIN_TOKEN']}"}
        self.write_key = sorted(env["BATON_INGEST_WRITE_KEYS"].split(","))[0]
        self.secrets: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.http: httpx.AsyncClient | None = None
        self.watching = asyncio.Event()  # the watcher reads from here on

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(timeout=10) as http:
            self.http = http
            with WebhookReceiver(port=SINK_PORT, on_delivery=self._on_delivery_threadsafe):
                await self._ensure_reps()
                say(
                    f"demo: reps ready, webhook sink on http://127.0.0.1:{SINK_PORT}; "
                    "sending traffic (Ctrl-C stops everything)"
                )
                await asyncio.gather(self._traffic(), self.email_and_identity(), self._watch())

    async def _ensure_reps(self) -> None:
        assert self.http is not None
        saved_path = self.state_dir / "demo-reps.json"
        saved: dict[str, dict[str, str]] = (
            json.loads(saved_path.read_text()) if saved_path.exists() else {}
        )
        live_ids = await self._live_rep_ids()
        saved = {rep_id: info for rep_id, info in saved.items() if rep_id in live_ids}
        if not saved:
            for name, email in DEMO_REPS:
                slug = name.split()[0].lower()
                response = await self.http.post(
                    f"{self.urls['router']}/v1/reps",
                    headers=self.admin,
                    json={
                        "name": name,
                        "email": email,
                        "webhook_url": f"http://127.0.0.1:{SINK_PORT}/reps/{slug}",
                    },
                )
                response.raise_for_status()
                rep = response.json()
                saved[rep["id"]] = {"name": name, "secret": rep["webhook_secret"]}
            saved_path.write_text(json.dumps(saved, indent=2))
        self.secrets = {rep_id: info["secret"] for rep_id, info in saved.items()}
        self.names = {rep_id: info["name"] for rep_id, info in saved.items()}

    async def _live_rep_ids(self) -> set[str]:
        """Every rep the router has, following the list's ``next`` links."""
        assert self.http is not None
        ids: set[str] = set()
        path: str | None = "/v1/reps"
        while path is not None:
            response = await self.http.get(f"{self.urls['router']}{path}", headers=self.admin)
            response.raise_for_status()
            page = response.json()
            ids |= {rep["id"] for rep in page["items"]}
            path = page["next"]
        return ids

    def _on_delivery_threadsafe(self, delivery: Delivery) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._on_delivery(delivery)))

    async def _on_delivery(self, delivery: Delivery) -> None:
        data = orjson.loads(delivery.body).get("data", {})
        rep_id = data.get("rep_id", "")
        secret = self.secrets.get(rep_id)
        try:
            if secret is None:
                raise WebhookVerificationError("unknown rep")
            Webhook(secret).verify(delivery.body, delivery.headers)
            check = "signature verified"
        except WebhookVerificationError as exc:
            check = f"SIGNATURE REJECTED ({exc})"
        lane = "express " if data.get("express") else ""
        say(
            f"  webhook → {self.names.get(rep_id, rep_id)}: {lane}lead {data.get('lead_id')} "
            f"(score {data.get('score')}, {data.get('reason')}) [{check}]"
        )
        if random.random() < 0.6:
            await asyncio.sleep(random.uniform(2, 8))
            await self._contact(data["lead_id"], rep_id)

    async def _contact(self, lead_id: str, rep_id: str) -> None:
        assert self.http is not None
        await self.http.post(
            f"{self.urls['router']}/v1/leads/{lead_id}/activity",
            headers=self.admin,
            json={"kind": "contacted", "rep_id": rep_id},
        )
        say(f"  {self.names.get(rep_id, rep_id)} called {lead_id}")

    async def _traffic(self) -> None:
        assert self.http is not None
        run = uuid.uuid4().hex[:4]
        while True:
            lead = f"{random.choice(LEADS)}-{run}"
            if random.random() < 0.08:
                call: dict[str, Any] = {"type": "track", "event": "Demo Requested"}
            else:
                call = {"type": "page", "properties": {"path": random.choice(PAGES)}}
            await self.http.post(
                f"{self.urls['ingest']}/v1/batch",
                auth=(self.write_key, ""),
                json={"batch": [{**call, "userId": lead, "messageId": uuid.uuid4().hex}]},
            )
            await asyncio.sleep(random.uniform(0.3, 1.2))

    async def email_and_identity(self) -> None:
        """A newsletter reader clicks links, then signs in on the site: one person, first
        two leads (keyed by the address, then by the user id), then one."""
        await self.watching.wait()  # the watcher reads from the latest offset
        address = await self._email_clicks()
        # The clicks scored first (the reader's own lead MQL): the merge carries it over.
        if await self._lookup(address, lambda view: view["stage"] == "mql") is not None:
            await self._signs_in(address)

    async def _email_clicks(self) -> str:
        """A newsletter reader clicks seven links; 8 points a click makes them MQL."""
        assert self.http is not None
        address = f"reader-{uuid.uuid4().hex[:4]}@example.com"
        now = int(time.time())
        clicks = [
            {
                "email": address,
                "event": "click",
                "sg_event_id": uuid.uuid4().hex,
                "timestamp": now + i,
                "url": "https://example.com/pricing?utm_source=newsletter",
            }
            for i in range(7)
        ]
        say(f"demo: SendGrid reports 7 email clicks by {address}")
        await self.http.post(
            f"{self.urls['ingest']}/v1/email/sendgrid",
            auth=(self.write_key, ""),
            content=orjson.dumps(clicks),
            headers={"Content-Type": "application/json"},
        )
        return address

    async def _signs_in(self, address: str) -> None:
        """The reader browses as a user id, whose identify carries the address: the scorer
        merges the address's lead into the user's; its lookup of the address says so."""
        assert self.http is not None
        user = f"user-{uuid.uuid4().hex[:4]}"
        say(f"demo: {address} signs in on the site as user {user} (identify with the email)")
        calls: list[dict[str, Any]] = [
            {"type": "page", "properties": {"path": "/docs/quickstart"}},
            {"type": "identify", "traits": {"email": address, "title": "Head of Sales"}},
        ]
        for call in calls:  # in order: the page is the user's own lead before the merge
            await self.http.post(
                f"{self.urls['ingest']}/v1/batch",
                auth=(self.write_key, ""),
                json={"batch": [{**call, "userId": user, "messageId": uuid.uuid4().hex}]},
            )
            await asyncio.sleep(1)
        view = await self._lookup(address, lambda view: view["lead_id"] == user)
        if view is not None:
            merged = ", ".join(view["merged_ids"])
            say(
                f"demo: the scorer looks up {address} and finds lead {user} "
                f"(merged ids: {merged}; {view['stage'].upper()}, score {view['score']:.1f})"
            )

    async def _lookup(
        self, key: str, until: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """The scorer's view of the lead ``key`` names, once ``until`` holds (30 s at most)."""
        assert self.http is not None
        url = f"{self.urls['scorer']}/v1/leads/{key}"
        for _ in range(60):
            response = await self.http.get(url, headers=self.admin)
            if response.status_code == 200 and until(view := response.json()):
                return view
            await asyncio.sleep(0.5)
        say(f"demo: the scorer's lookup of {key} did not answer as expected (see its log)")
        return None

    async def _watch(self) -> None:
        prefix = self.env.get("BATON_TOPIC_PREFIX", "")
        consumer = AIOKafkaConsumer(
            f"{prefix}leads.transitions",
            f"{prefix}leads.sla",
            **client_options(ServiceSettings(**self.env).kafka),
            group_id=None,
            auto_offset_reset="latest",
        )
        await consumer.start()
        try:
            for partition in consumer.assignment():
                await consumer.position(partition)  # "latest" resolved: nothing missed now
            self.watching.set()
            async for record in consumer:
                value = orjson.loads(record.value)
                if record.topic.endswith("leads.transitions"):
                    say(
                        f"{value['lead_id']}: {value['from_stage']} → "
                        f"{value['to_stage'].upper()} ({value['reason']})"
                    )
                else:
                    extra = (
                        f" in {value['elapsed_seconds']:.1f} s"
                        if value.get("elapsed_seconds") is not None
                        else ""
                    )
                    if value.get("measure") == "assign":  # the pipeline's clock, no rep
                        clock = f"time-to-assign {value['status']}"
                        say(f"  SLA {clock}: {value['lead_id']}{extra}")
                    else:
                        who = self.names.get(value["rep_id"], value["rep_id"]) or "no rep yet"
                        say(f"  SLA {value['status']}: {value['lead_id']} ({who}){extra}")
        finally:
            await consumer.stop()
