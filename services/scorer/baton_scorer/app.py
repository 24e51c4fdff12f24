"""The streaming shell around the pure scoring core.

Flow: ``leads.events`` (keyed by lead id) → decode (poison → ``leads.events.dlq``)
→ ``lifecycle.apply_event`` with the lead's state from the ``leads`` table
(changelogged, so another worker recovers it) → transition, if any, to
``leads.transitions``. Transition ids are deterministic, so a re-emission after
a crash is absorbed by every consumer's dedup on ``transition_id``.
"""

from __future__ import annotations

from typing import Any

import faust
from aiohttp import web
from prometheus_client import Counter
from pydantic import ValidationError

from baton_scorer.config import ScorerSettings
from baton_scorer.lifecycle import LeadState, apply_event
from baton_scorer.rules import Rules
from baton_shared.clock import utcnow
from baton_shared.logs import get_logger
from baton_shared.metrics import exposition
from baton_shared.schemas import DeadLetter, LeadEvent, decode
from baton_shared.topics import dlq

log = get_logger(__name__)

EVENTS = Counter("baton_scorer_events_total", "Events scored", ["outcome"])
TRANSITIONS = Counter("baton_scorer_transitions_total", "Stage transitions emitted", ["to_stage"])


def faust_broker_url(bootstrap_servers: str) -> str:
    return ";".join(f"kafka://{hostport.strip()}" for hostport in bootstrap_servers.split(","))


def create_app(settings: ScorerSettings, rules: Rules) -> faust.App:
    topics = settings.topics
    app = faust.App(
        topics.group("baton-scorer"),
        broker=faust_broker_url(settings.kafka_bootstrap_servers),
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=True,
        producer_acks=-1,
        web_host=settings.host,
        web_port=settings.port,
        web_bind=settings.host,
        consumer_auto_offset_reset="earliest",
    )
    events_topic = app.topic(
        topics.events,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    transitions_topic = app.topic(
        topics.transitions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    dlq_topic = app.topic(
        dlq(topics.events),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    leads = app.Table(
        "leads", default=None, partitions=settings.topic_partitions, key_type=str, value_type=None
    )

    @app.agent(events_topic)
    async def score(stream: faust.StreamT[bytes]) -> None:
        async for raw in stream:
            try:
                event = decode(LeadEvent, raw)
            except ValidationError as exc:
                EVENTS.labels(outcome="dead_letter").inc()
                letter = _dead_letter(stream.current_event, raw, str(exc))
                await dlq_topic.send(key=stream.current_event.key, value=letter.to_bytes())
                continue
            stored = leads.get(event.lead_id)
            state = LeadState.from_dict(stored) if stored else LeadState()
            new_state, transition = apply_event(state, event, rules)
            if new_state is not state:
                leads[event.lead_id] = new_state.to_dict()
            EVENTS.labels(outcome="scored" if new_state is not state else "duplicate").inc()
            if transition is not None:
                TRANSITIONS.labels(to_stage=transition.to_stage.value).inc()
                await transitions_topic.send(
                    key=event.lead_id.encode(), value=transition.to_bytes()
                )
                log.info(
                    "lead_transition",
                    lead_id=event.lead_id,
                    to_stage=transition.to_stage.value,
                    score=transition.score,
                    express=transition.express,
                    rules_version=rules.version,
                )

    @app.page("/healthz")
    async def healthz(self: Any, request: web.Request) -> web.Response:
        ready = app.rebalancing is False and bool(app.consumer.assignment())
        body = {"status": "ready" if ready else "unavailable", "checks": {"kafka": ready}}
        return self.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics(self: Any, request: web.Request) -> web.Response:
        body, content_type = exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    return app


def _dead_letter(event: Any, raw: bytes, error: str) -> DeadLetter:
    message = event.message
    return DeadLetter(
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key.decode("utf-8", "replace") if message.key else None,
        value=raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw),
        error=error[:2000],
        consumer="baton-scorer",
        failed_at=utcnow(),
    )
