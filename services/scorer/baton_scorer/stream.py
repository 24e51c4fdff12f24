"""The scorer worker's I/O around the scoring step (:mod:`baton_scorer.step`).

:class:`ScorerShell` is what the faust agents and timers (:mod:`baton_scorer.app`) call.
It keeps the worker's caches over the ``leads`` and ``aliases`` tables, hands records
to the step and makes its outputs durable, per batch in this order:

1. dead letters go to ``<topic>.dlq``; anonymous events to the identity topic;
2. the transitions, the merges applied (``leads.merges``, keyed by the survivor) and
   the changed leads' account updates (:mod:`baton_scorer.accounts_stream`) are
   produced and *acknowledged* by Kafka;
3. each touched lead's state (with its merge :class:`~baton_scorer.handoff.Link`) is
   written once to the table's changelog, as one record batch per partition, and
   acknowledged, then to the local store (:mod:`baton_scorer.local_store`);
4. the merge records and forwarded events (:mod:`baton_scorer.handoff`) are produced,
   in order, and acknowledged — after the states, so a lead is handed over only once
   its link is durable;
5. only then does the agent ack the input records (their offsets commit after that).

A crash anywhere re-processes the batch: a transition is never lost, and a re-emitted
one carries the same deterministic ``transition_id``, on which consumers dedup.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import faust
import orjson

from baton_scorer import core, step
from baton_scorer import metrics as m
from baton_scorer.accounts_stream import AccountFeed
from baton_scorer.handoff import Link, merge_records
from baton_scorer.identity import Alias
from baton_scorer.lanes import LaneLock
from baton_scorer.local_store import (
    approximate_size,
    changelog_partitions,
    evict,
    keyed,
    scan,
    write_through,
)
from baton_scorer.rules_source import RulesSource
from baton_scorer.timers import TimerQueue
from baton_shared.clock import utcnow
from baton_shared.logs import get_logger
from baton_shared.schemas import DeadLetter, Transition
from baton_shared.topics import Topics, dlq

log = get_logger(__name__)

SCORED = m.EVENTS.labels(outcome="scored")
DUPLICATES = m.EVENTS.labels(outcome="duplicate")
HELD = m.EVENTS.labels(outcome="held_anonymous")


class ScorerShell:
    """The per-worker state around the step: caches, timers, the rules in use."""

    def __init__(
        self,
        app: faust.App,
        topics: Topics,
        internal: tuple[str, str],
        source: RulesSource,
        leads: Any,
        aliases: Any,
        accounts_topic: str = "",
        cache_leads: int = 50_000,
    ) -> None:
        self.app = app
        self.topics = topics
        self.identity_topic, self.stitched_topic = internal
        self.source = source
        self.leads = leads  # faust tables: lead id -> LeadState, anonymous id -> Alias
        self.aliases_table = aliases
        self.sources = {
            topics.events: step.Source.EVENTS,
            topics.express: step.Source.EVENTS,  # copies of express-lane events (lanes.py)
            topics.activity: step.Source.ACTIVITY,
        }
        self.states: dict[str, Any] = {}
        self.links: dict[str, Link] = {}
        self.identity = step.Identity(self.links, self.states.__setitem__)
        self.aliases: dict[str, Alias] = {}
        self.timers = TimerQueue()
        self.timers_stale = True
        self.refill: asyncio.Task[None] | None = None  # the timers' refill from the table
        self.cache_leads = cache_leads  # states (and aliases) kept between batches
        self.feed = AccountFeed(accounts_topic)  # each lead's account (none: no topic)
        self.privacy: Any = None  # privacy mode: a baton_scorer.privacy.Privacy
        # A batch and the timers change the same cached states: a timer saving a lead
        # mid-batch could make durable what the batch has not published yet.
        self.lock = LaneLock()  # express-lane batches go first (lanes.py)

    def reset_caches(self) -> None:
        """After a rebalance the table is the truth again."""
        self.states.clear()
        self.links.clear()
        self.identity.sent.clear()  # after a restart or a move, absorbs are sent again
        self.aliases.clear()
        self.feed.clear()
        self.timers.clear()
        self.timers_stale = True
        if self.privacy is not None:
            self.privacy.reset()
        if self.refill is not None:
            self.refill.cancel()
            self.refill = None

    def load_state(self, lead_id: str) -> Any:
        state = self.states.get(lead_id)
        if state is None:
            stored = self.leads.get(lead_id.encode())
            if stored:
                raw = orjson.loads(stored)
                if self.privacy is not None:
                    raw = self.privacy.open_stored(lead_id, raw)
                state = core.state_from_dict(raw, self.source.rules)
                if "identity" in raw:
                    self.links[lead_id] = Link.from_dict(raw["identity"])
                self.feed.loaded(lead_id, raw)
            else:
                state = core.new_state()
            self.states[lead_id] = state
        return state

    def load_alias(self, anonymous_id: str) -> Alias:
        alias = self.aliases.get(anonymous_id)
        if alias is None:
            alias = Alias.from_bytes(self.aliases_table.get(anonymous_id.encode()))
            self.aliases[anonymous_id] = alias
        return alias

    async def score_batch(self, events: list[Any]) -> None:
        """Score a batch of the input topics' records and make the outcome durable."""
        started = time.perf_counter()
        sources = self.sources
        records = [(sources.get(ev.message.topic, step.Source.STITCHED), ev.value) for ev in events]
        if self.privacy is None:
            scored = step.score_batch(records, self.load_state, self.source.rules, self.identity)
        else:  # sealed records opened for the step, its merge records sealed
            scored = await self.privacy.score_batch(self, events, records)
        for index, error in scored.dead_letters:
            await self.dead_letter(events[index], error)
        forwards = [
            await self._send(self.identity_topic, anonymous_id.encode(), events[index].value)
            for index, anonymous_id in scored.to_stitch
        ]
        forwards += await self.send_accounts(scored.touched)
        for kind in scored.rep_actions:
            m.ACTIVITIES.labels(kind=kind).inc()
        SCORED.inc(scored.scored)
        DUPLICATES.inc(scored.duplicates)
        await self.publish(scored.transitions)
        await self.publish_merges(scored.merged)
        if forwards:
            await asyncio.gather(*forwards)
        await self.save_leads(scored.touched)
        m.MERGES.inc(scored.merges)
        if scored.handoffs:
            sends = [
                await self._send(self.stitched_topic, key.encode(), value)
                for key, value in scored.handoffs
            ]
            await asyncio.gather(*sends)
        if scored.newest_at is not None:
            # How far behind real time scoring runs: measured when the batch is
            # durable, against its newest event (a late event is not lag).
            m.EVENT_TIME_LAG.set(max(0.0, time.time() - scored.newest_at))
        m.BATCH_SECONDS.set(time.perf_counter() - started)

    async def stitch_batch(self, events: list[Any]) -> None:
        """Stitch a batch of the identity topic's records; release linked events."""
        stitched = step.stitch_batch([ev.value for ev in events], self.load_alias)
        for index, error in stitched.dead_letters:
            await self.dead_letter(events[index], error)
        HELD.inc(stitched.held)
        sends = [
            await self._send(self.stitched_topic, e.lead_id.encode(), e.to_bytes())
            for e in stitched.released
        ]
        if sends:
            await asyncio.gather(*sends)
        records = [(a.encode(), alias.to_bytes()) for a, alias in stitched.touched.items()]
        await self.write(self.aliases_table, records)
        evict(self.aliases, self.cache_leads)

    async def fire_timers(self) -> None:
        """Recycle the leads whose cold timer is due now, without any new event."""
        app = self.app
        if app.rebalancing or not app.consumer.assignment():
            return
        if self.timers_stale:
            self.timers_stale = False
            self.timers.clear()
            self.refill = asyncio.create_task(self.refill_timers())
        async with self.lock:
            if app.rebalancing:  # began while this waited for the lock
                return
            now = time.time()
            due = self.timers.pop_due(now)
            if self.privacy is not None:
                await self.privacy.fetch(due)
            transitions = step.fire_timers(due, self.load_state, now, self.source.rules)
            m.TIMERS_FIRED.inc(len(transitions))
            rollups = await self.send_accounts(due)
            await self.publish(transitions)
            await asyncio.gather(*rollups)
            await self.save_leads(due)
            self.observe()

    async def refill_timers(self, chunk: int = 2_000) -> None:
        """Schedule every stored lead's timer, a chunk at a time between batches
        (never one pass over all leads while scoring waits)."""
        stored = ((key.decode(), stored_due(value)) for key, value in scan(self.leads))
        more = True
        while more:
            more = self.timers.refill(stored, chunk)
            await asyncio.sleep(0)  # a batch waiting for the loop goes first

    async def _send(self, topic: str, key: bytes, value: bytes) -> asyncio.Future[Any]:
        """Queue one record on faust's producer; the future resolves when it is acked."""
        future: asyncio.Future[Any] = await self.app.producer.send(
            topic, key, value, None, None, None
        )
        return future

    async def send_accounts(self, lead_ids: Iterable[str]) -> list[asyncio.Future[Any]]:
        """Queue the account updates of the leads changed
        (:class:`~baton_scorer.accounts_stream.AccountFeed`); acked before their states."""
        updates = self.feed.updates(lead_ids, self.states, self.source.rules)
        return await self.feed.send(self.app.producer._ensure_producer(), updates)

    async def dead_letter(self, event: Any, error: str) -> None:
        m.EVENTS.labels(outcome="dead_letter").inc()
        m.DEAD_LETTERS.inc()
        message = event.message
        source_topic = (
            self.topics.activity if message.topic == self.topics.activity else self.topics.events
        )
        await self._send(dlq(source_topic), message.key, dead_letter_of(event, error).to_bytes())

    async def publish(self, transitions: list[Transition]) -> None:
        """Produce and wait for Kafka's acknowledgement of every transition."""
        if not transitions:
            return
        emitted_at = utcnow()
        futures = []
        stamped = [t.model_copy(update={"emitted_at": emitted_at}) for t in transitions]
        if self.privacy is None:
            values = [t.to_bytes() for t in stamped]
        else:  # email and traits sealed with the lead's key
            values = await self.privacy.seal_transitions(stamped)
        for t, value in zip(transitions, values, strict=True):
            futures.append(await self._send(self.topics.transitions, t.lead_id.encode(), value))
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

    async def publish_merges(self, merged: list[tuple[str, str, float | None]]) -> None:
        """Produce the merges applied (:func:`~baton_scorer.handoff.merge_records`) and
        wait for Kafka's acknowledgement: before the states, so a merge the state keeps
        was told (a crash in between re-emits it, with the same ``merge_id``)."""
        if not merged:
            return
        topic = self.topics.merges
        futures = [
            await self._send(topic, r.survivor_id.encode(), r.to_bytes())
            for r in merge_records(merged, utcnow())
        ]
        await asyncio.gather(*futures)

    async def save_leads(self, lead_ids: Iterable[str]) -> None:
        """Write the cached states of ``lead_ids`` to the ``leads`` table and its
        changelog, then schedule their timers.

        faust's ``table[key] = value`` costs a full send path per key; this produces
        the changelog records as one record batch per partition (the partition the
        producer's partitioner gives the lead id, as faust's ``use_partitioner``
        would), waits for all of them, then writes the local store, so the state is
        durable before the batch's offsets are acked. The cache then keeps the
        ``cache_leads`` most recently saved leads; the others are read back from the
        store when next needed.
        """
        states = {lead_id: self.states[lead_id] for lead_id in lead_ids}
        if not states:
            return
        rows: dict[str, dict[str, Any]] = {}
        links = self.links
        for key, state in states.items():
            stored = rows[key] = state.to_dict()
            link = links.get(key)
            if link is not None and not link.is_empty():
                stored["identity"] = link.to_dict()
            account = self.feed.stored(key)
            if account is not None:
                stored["account"] = account
        if self.privacy is not None:  # traits, email and merge bookkeeping sealed
            await self.privacy.seal_stored(rows)
        records = [(key.encode(), orjson.dumps(stored)) for key, stored in rows.items()]
        await self.write(self.leads, records)
        cached = self.states
        for lead_id, state in states.items():
            self.timers.schedule(lead_id, state.due)
            cached[lead_id] = cached.pop(lead_id)  # most recently used last
        for lead_id in evict(cached, self.cache_leads):
            links.pop(lead_id, None)
            self.feed.known.pop(lead_id, None)

    async def write(self, table: Any, records: list[tuple[bytes, bytes]]) -> None:
        """Write (key, value) records to ``table``: its changelog, acknowledged, then
        its local store (:func:`~baton_scorer.local_store.write_through`)."""
        if not records:
            return
        producer = self.app.producer._ensure_producer()  # the aiokafka producer faust runs
        partitions = await changelog_partitions(producer, table)
        await write_through(producer, table, keyed(records, partitions))

    def observe(self) -> None:
        """Table sizes and consumer lag, for /metrics."""
        m.TABLE_SIZE.labels(table="leads").set(approximate_size(self.leads))
        m.TABLE_SIZE.labels(table="aliases").set(approximate_size(self.aliases_table))
        recovery = self.app.tables.recovery
        m.STANDBY_LAG.set(standby_lag(recovery.standby_highwaters, recovery.standby_offsets))
        try:
            consumer = self.app.consumer
            # faust keeps the last offset it read per partition (private, no public API).
            m.CONSUMER_LAG.set(
                offset_lag(consumer.assignment(), consumer.highwater, consumer._read_offset)
            )
        except Exception:  # lag is best effort; never break the timer over it
            pass


def standby_lag(highwaters: Mapping[Any, int], offsets: Mapping[Any, int | None]) -> int:
    """Records of the standby partitions not read yet: ``highwaters[tp]`` is the last
    offset when assigned, ``offsets[tp]`` the last read (None: none yet)."""
    lag = 0
    for tp, high in highwaters.items():
        read = offsets.get(tp)
        lag += max(0, high - (-1 if read is None else read))
    return lag


def stored_due(value: bytes | None) -> float | None:
    """The recycle timer saved with a lead's state (None: none)."""
    return orjson.loads(value).get("due") if value else None


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


def dead_letter_of(event: Any, error: str) -> DeadLetter:
    """The DLQ record for a faust event that could not be scored or stitched."""
    message = event.message
    raw = event.value
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
