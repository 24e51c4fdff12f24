"""The streaming shell around the pure scoring core (faust-streaming).

Flow, in order:

1. ``score`` reads ``leads.events``, ``leads.activity`` and the internal
   ``baton-scorer-stitched`` topic in batches (``noack_take``). A record that
   cannot be decoded or scored goes to ``<topic>.dlq`` with the error.
2. An event with an ``anonymous_id`` is repartitioned by that id to the internal
   ``baton-scorer-identity`` topic, where ``stitch_identities`` keeps the
   ``aliases`` table (:mod:`baton_scorer.identity`): anonymous events wait there
   until an identify links them, then come back re-keyed to the lead through
   ``baton-scorer-stitched``.
3. Other events run through the pure core (:mod:`baton_scorer.core`: the compiled
   core, or the Python reference :func:`baton_scorer.lifecycle.score_event`), and a
   rep's ``qualified`` (BANT confirmed: the qualification gate) or ``rejected``
   activity through its ``apply_rep_action``, against the lead's state from the
   changelogged ``leads`` table.
4. Per batch, in this order: the transitions are produced and *acknowledged* by
   Kafka, then each touched lead's state is written once to the table
   (changelog), then the input events are acked (offsets commit after that).
   A crash anywhere re-processes the batch: a transition is never lost, and a
   re-emitted one carries the same deterministic ``transition_id``
   (lead, stage, trigger), on which every consumer dedups (the router has a
   primary key on it).
5. ``fire_timers`` (every second) recycles SQL leads whose cold timer is due —
   without any new event — from a heap rebuilt from the table after each
   rebalance; ``reload_rules`` swaps in a changed rules file and ``follow_rules``
   a document published on the compacted ``scorer.rules`` topic
   (:mod:`baton_scorer.rules_source` says which wins). Each batch takes the rules
   in use when it starts, so every transition names the version that decided it.

Throughput: faust's per-event machinery (one stream step, one changelog write,
one ack per event) holds a worker to a few hundred events/s with the defaults;
batching with ``noack_take``, one changelog record batch per partition per batch,
bigger stream buffers and a producer linger remove that. What then held a worker
near 5,000 events/s was faust's consumer racing four tasks per record
(:mod:`baton_scorer.faust_consumer` hands records over directly while the flow is
active): about 14,000 events/s (see bench/scorer.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from aiohttp import web
from pydantic import ValidationError

from baton_scorer import core
from baton_scorer import metrics as m
from baton_scorer.config import ScorerSettings
from baton_scorer.core import apply_rep_action, expire, score_event
from baton_scorer.faust_consumer import BatonConsumer
from baton_scorer.identity import Alias, stitch
from baton_scorer.rules_source import RulesSource
from baton_scorer.rules_topic import RulesFollower
from baton_scorer.timers import TimerQueue
from baton_shared.clock import utcnow
from baton_shared.logs import get_logger
from baton_shared.metrics import exposition
from baton_shared.schemas import Activity, ActivityKind, DeadLetter, LeadEvent, Transition, decode
from baton_shared.topics import dlq

log = get_logger(__name__)

BATCH_WITHIN_SECONDS = 0.25
# Rep actions that move a lead: a BANT confirmation (the qualification gate) and a
# rejection (back to nurture). Other activities (accepted, contacted, won, lost) are
# the router's and the SLA monitor's business.
REP_ACTIONS = frozenset({ActivityKind.QUALIFIED, ActivityKind.REJECTED})
TIMER_TICK_SECONDS = 1.0


def faust_broker_url(bootstrap_servers: str) -> str:
    return ";".join(f"kafka://{hostport.strip()}" for hostport in bootstrap_servers.split(","))


def internal_topics(settings: ScorerSettings) -> tuple[str, str]:
    """The repartition topics: by anonymous id, and stitched back by lead id."""
    group = settings.topics.group("baton-scorer")
    return f"{group}-identity", f"{group}-stitched"


SCORED = m.EVENTS.labels(outcome="scored")
DUPLICATES = m.EVENTS.labels(outcome="duplicate")


async def send_batched(
    producer: Any, topic: str, records: list[tuple[int, bytes, bytes]]
) -> list[asyncio.Future[Any]]:
    """Queue ``(partition, key, value)`` records as one record batch per partition
    (aiokafka's ``create_batch``/``send_batch``): a few microseconds per record instead
    of a future and a send path each. Returns the batches' delivery futures."""
    batches: dict[int, Any] = {}
    futures = []
    for partition, key, value in records:
        batch = batches.get(partition)
        if batch is None:
            batch = batches[partition] = producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:  # full
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a {len(value)}-byte record does not fit a batch of {topic}")
    for partition, batch in batches.items():
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


class Scorer:
    """The per-worker state around the core: caches, timers, rules in use."""

    def __init__(self, app: faust.App, settings: ScorerSettings, source: RulesSource) -> None:
        self.app = app
        self.source = source
        self.states: dict[str, Any] = {}
        self.aliases: dict[str, Alias] = {}
        self.timers = TimerQueue()
        self.timers_stale = True
        self.partitions: dict[str, int] = {}  # lead id -> its changelog partition
        # A batch and the timers change the same cached states: a timer saving a lead
        # mid-batch could make durable what the batch has not published yet.
        self.lock = asyncio.Lock()

    def reset_caches(self) -> None:
        """After a rebalance the table is the truth again."""
        self.states.clear()
        self.aliases.clear()
        self.partitions.clear()
        self.timers.clear()
        self.timers_stale = True


def create_app(
    settings: ScorerSettings, source: RulesSource, follower: RulesFollower | None = None
) -> faust.App:
    """The worker's faust app; ``follower`` (when given) keeps ``source`` on the rules topic."""
    topics = settings.topics
    identity_name, stitched_name = internal_topics(settings)
    app = faust.App(
        topics.group("baton-scorer"),
        broker=faust_broker_url(settings.kafka_bootstrap_servers),
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=True,
        producer_acks=-1,
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
        stream_buffer_maxsize=32_768,
        broker_max_poll_records=5_000,
        broker_commit_interval=1.0,
        # A SIGKILLed worker holds its partitions until its session expires.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        table_standby_replicas=0,
        web_host=settings.host,
        web_port=settings.port,
        web_bind=settings.host,
        consumer_auto_offset_reset="earliest",
    )
    # Records reach the streams without faust's per-record race (see faust_consumer).
    app.transport.Consumer = BatonConsumer  # type: ignore[misc]
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    inputs = app.topic(topics.events, topics.activity, stitched_name, **raw)
    identity_topic = app.topic(identity_name, **raw)
    stitched_topic = app.topic(stitched_name, **raw)
    transitions_topic = app.topic(topics.transitions, **raw)
    table_options: dict[str, Any] = {
        "default": None,
        "partitions": settings.topic_partitions,
        # Raw bytes keys and values: a changelog record's key is the lead id exactly
        # as on the source topics, so the same partitioner puts it in the same
        # partition (a JSON-encoded key would hash elsewhere and be recovered by
        # the wrong worker). Values are orjson-encoded LeadState / Alias.
        "key_type": bytes,
        "value_type": bytes,
        # Writes land in the changelog partition of the key, so a batch may write
        # many leads after its last event.
        "use_partitioner": True,
    }
    leads = app.Table("leads", **table_options)
    aliases = app.Table("aliases", **table_options)
    scorer = Scorer(app, settings, source)

    def load_state(lead_id: str) -> Any:
        state = scorer.states.get(lead_id)
        if state is None:
            stored = leads.get(lead_id.encode())
            state = (
                core.state_from_dict(orjson.loads(stored), source.rules)
                if stored
                else core.new_state()
            )
            scorer.states[lead_id] = state
        return state

    async def save(table: Any, states: dict[str, Any]) -> None:
        """Write states to the table and its changelog, one record per lead.

        faust's ``table[key] = value`` costs a full send path per key; this writes
        the local store and produces the changelog records as one record batch per
        partition (the partition the producer's partitioner gives the lead id, as
        faust's ``use_partitioner`` would), then waits for all of them, so the state
        is durable before the batch's offsets are acked.
        """
        if not states:
            return
        changelog = table.changelog_topic.get_topic_name()
        producer = app.producer._ensure_producer()  # the aiokafka producer faust runs
        await producer.client._wait_on_metadata(changelog)
        records = []
        for key, state in states.items():
            value = orjson.dumps(state.to_dict())
            raw_key = key.encode()
            table.data[raw_key] = value
            partition = scorer.partitions.get(key)
            if partition is None:
                partition = producer._partition(changelog, None, None, None, raw_key, None)
                scorer.partitions[key] = partition
            records.append((partition, raw_key, value))
        await asyncio.gather(*await send_batched(producer, changelog, records))

    async def dead_letter(event: Any, error: str) -> None:
        m.EVENTS.labels(outcome="dead_letter").inc()
        m.DEAD_LETTERS.inc()
        letter = _dead_letter(event, event.value, error)
        source_topic = topics.activity if event.message.topic == topics.activity else topics.events
        await app.producer.send(
            dlq(source_topic), event.message.key, letter.to_bytes(), None, None, None
        )

    async def publish(transitions: list[Transition]) -> None:
        """Produce and wait for Kafka's acknowledgement of every transition."""
        if not transitions:
            return
        emitted_at = utcnow()
        futures = []
        for t in transitions:
            stamped = t.model_copy(update={"emitted_at": emitted_at})
            futures.append(
                await app.producer.send(
                    transitions_topic.get_topic_name(),
                    t.lead_id.encode(),
                    stamped.to_bytes(),
                    None,
                    None,
                    None,
                )
            )
            m.TRANSITIONS.labels(
                to_stage=t.to_stage.value, reason=(t.reason_kind or "").__str__()
            ).inc()
            log.info(
                "lead_transition",
                lead_id=t.lead_id,
                to_stage=t.to_stage.value,
                reason=t.reason_kind,
                score=t.score,
                transition_id=t.transition_id,
                rules_version=t.rules_version,
            )
        await asyncio.gather(*futures)

    async def score_batch(events: list[Any]) -> None:
        started = time.perf_counter()
        rules = source.rules
        out: list[Transition] = []
        touched: set[str] = set()
        forwards = []
        newest_at: float | None = None
        scored = duplicates = 0
        for ev in events:
            topic = ev.message.topic
            try:
                if topic == topics.activity:
                    activity = decode(Activity, ev.value)
                    if activity.kind not in REP_ACTIONS:
                        continue
                    state = load_state(activity.lead_id)
                    _, transitions = apply_rep_action(
                        state,
                        activity.lead_id,
                        activity.activity_id,
                        activity.kind.value,
                        activity.occurred_at.timestamp(),
                        rules,
                        reason=activity.reason,
                        bant=tuple(activity.bant),
                    )
                    m.ACTIVITIES.labels(kind=activity.kind.value).inc()
                    touched.add(activity.lead_id)
                    out += transitions
                    continue
                event = decode(LeadEvent, ev.value)
                if topic == topics.events and event.anonymous_id is not None:
                    forwards.append(
                        await app.producer.send(
                            identity_topic.get_topic_name(),
                            event.anonymous_id.encode(),
                            ev.value,
                            None,
                            None,
                            None,
                        )
                    )
                    continue
                state = load_state(event.lead_id)
                if core.is_seen(state, event.event_id):
                    duplicates += 1
                    continue
                at = event.occurred_at.timestamp()
                _, transitions = score_event(state, event, rules, at)
            except (ValidationError, ValueError, TypeError, KeyError) as exc:
                await dead_letter(ev, f"{type(exc).__name__}: {exc}")
                continue
            scored += 1
            if newest_at is None or at > newest_at:
                newest_at = at
            touched.add(event.lead_id)
            if transitions:
                out += transitions
        SCORED.inc(scored)
        DUPLICATES.inc(duplicates)
        await publish(out)
        if forwards:
            await asyncio.gather(*forwards)
        await save(leads, {lead_id: scorer.states[lead_id] for lead_id in touched})
        for lead_id in touched:
            scorer.timers.schedule(lead_id, scorer.states[lead_id].due)
        if newest_at is not None:
            # How far behind real time scoring runs: measured when the batch is
            # durable, against its newest event (a late event is not lag).
            m.EVENT_TIME_LAG.set(max(0.0, time.time() - newest_at))
        m.BATCH_SECONDS.set(time.perf_counter() - started)

    @app.agent(inputs)
    async def score(stream: faust.StreamT[bytes]) -> None:
        # Pipeline depth one: batch N is scored in a task while faust fills batch N+1
        # (noack_take stalls delivery while the loop body runs). Batches still run
        # strictly one after another, and each is acked only once it is durable.
        previous: asyncio.Task[None] | None = None

        async def process(events: list[Any]) -> None:
            async with scorer.lock:
                await score_batch(events)
            for ev in events:
                await stream.ack(ev)

        async for batch in stream.noack_take(settings.batch_max, within=BATCH_WITHIN_SECONDS):
            if previous is not None:
                await previous
            previous = asyncio.create_task(process(list(batch)))

    async def stitch_batch(events: list[Any]) -> None:
        touched: dict[str, Alias] = {}
        sends = []
        for ev in events:
            try:
                event = decode(LeadEvent, ev.value)
                anonymous = event.anonymous_id or ""
                alias = scorer.aliases.get(anonymous) or _load_alias(
                    aliases.get(anonymous.encode())
                )
                scorer.aliases[anonymous] = alias
                released = stitch(alias, event)
            except (ValidationError, ValueError, TypeError, KeyError) as exc:
                await dead_letter(ev, f"{type(exc).__name__}: {exc}")
                continue
            if not released:
                m.EVENTS.labels(outcome="held_anonymous").inc()
            touched[anonymous] = alias
            for e in released:
                sends.append(
                    await app.producer.send(
                        stitched_topic.get_topic_name(),
                        e.lead_id.encode(),
                        e.to_bytes(),
                        None,
                        None,
                        None,
                    )
                )
        if sends:
            await asyncio.gather(*sends)
        for anonymous, alias in touched.items():
            aliases[anonymous.encode()] = _dump_alias(alias)

    @app.agent(identity_topic)
    async def stitch_identities(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.noack_take(settings.batch_max, within=BATCH_WITHIN_SECONDS):
            await stitch_batch(list(batch))
            for ev in batch:
                await stream.ack(ev)

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        scorer.reset_caches()

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: Any, **kwargs: Any) -> None:
        scorer.reset_caches()

    @app.timer(TIMER_TICK_SECONDS)
    async def fire_timers() -> None:
        if app.rebalancing or not app.consumer.assignment():
            return
        if scorer.timers_stale:
            for key, stored in list(leads.items()):
                due = orjson.loads(stored).get("due") if stored else None
                scorer.timers.schedule(key.decode(), due)
            scorer.timers_stale = False
        async with scorer.lock:
            await fire_due_timers()

    async def fire_due_timers() -> None:
        now = time.time()
        rules = source.rules
        out: list[Transition] = []
        fired = []
        for lead_id in scorer.timers.pop_due(now):
            state = load_state(lead_id)
            transitions = expire(state, lead_id, now, rules)
            out += transitions
            fired.append(lead_id)
            m.TIMERS_FIRED.inc(len(transitions))
        await publish(out)
        await save(leads, {lead_id: scorer.states[lead_id] for lead_id in fired})
        for lead_id in fired:
            scorer.timers.schedule(lead_id, scorer.states[lead_id].due)
        _observe(app, scorer, leads, aliases)

    def rules_changed() -> None:
        scorer.timers_stale = True  # due times may move with the new rules

    @app.timer(TIMER_TICK_SECONDS)
    async def reload_rules() -> None:
        if source.poll():
            rules_changed()

    if follower is not None:

        @app.task
        async def follow_rules() -> None:
            await follower.follow(rules_changed)

    @app.page("/healthz")
    async def healthz(self: Any, request: web.Request) -> web.Response:
        ready = app.rebalancing is False and bool(app.consumer.assignment())
        body = {
            "status": "ready" if ready else "unavailable",
            "checks": {"kafka": ready},
            "rules_version": source.rules.version,
            "rules_origin": source.origin,
            "core": core.KIND,
        }
        return self.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics_page(self: Any, request: web.Request) -> web.Response:
        body, content_type = exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.scorer = scorer  # type: ignore[attr-defined]
    return app


def _observe(app: faust.App, scorer: Scorer, leads: Any, aliases: Any) -> None:
    m.TABLE_SIZE.labels(table="leads").set(len(leads))
    m.TABLE_SIZE.labels(table="aliases").set(len(aliases))
    try:
        consumer = app.consumer
        # faust keeps the last offset it read per partition (private, no public API).
        m.CONSUMER_LAG.set(
            offset_lag(consumer.assignment(), consumer.highwater, consumer._read_offset)
        )
    except Exception:  # lag is best effort; never break the timer over it
        pass


def offset_lag(partitions: Any, highwater: Any, read_offsets: Mapping[Any, int | None]) -> int:
    """Records not read yet, summed over ``partitions``.

    ``highwater(tp)`` is Kafka's next offset to be written; ``read_offsets[tp]`` the
    last offset read. A partition not read yet, or without a known high water, counts 0.
    """
    lag = 0
    for tp in partitions:
        high = highwater(tp)
        read = read_offsets.get(tp)
        if high is not None and read is not None:
            lag += max(0, high - read - 1)
    return lag


def _load_alias(stored: bytes | None) -> Alias:
    if not stored:
        return Alias()
    raw = orjson.loads(stored)
    pending = [LeadEvent.model_validate(e) for e in raw.get("pending", [])]
    return Alias(lead_id=raw.get("lead_id"), pending=pending, dropped=raw.get("dropped", 0))


def _dump_alias(alias: Alias) -> bytes:
    return orjson.dumps(
        {
            "lead_id": alias.lead_id,
            "pending": [e.model_dump(mode="json", by_alias=True) for e in alias.pending],
            "dropped": alias.dropped,
        }
    )


def _dead_letter(event: Any, raw: Any, error: str) -> DeadLetter:
    message = event.message
    return DeadLetter(
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key.decode("utf-8", "replace") if message.key else None,
        value=raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw),
        error=error[:2000],
        consumer="baton-scorer",
        failed_at=datetime.now(UTC),
    )
