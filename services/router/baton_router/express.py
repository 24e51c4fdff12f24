"""The router's express lane: an express-lane SQL is decided ahead of the bulk.

:class:`LanePipeline` consumes ``leads.transitions`` as
:class:`~baton_shared.pipeline.ConsumePipeline` does (decode or dead-letter, handle with
bounded retries, commit last), with two loops over one look-ahead window of records:

* the **reader** fetches and decodes records into the window (at most ``lookahead`` not
  yet routed) and hands each express-lane SQL (a demo request) to the **express** loop,
  which routes it at once, in a transaction of its own whose webhooks go to the
  dispatcher straight away (when fewer than ``QUEUED_AHEAD`` records wait for the bulk
  loop, the express SQL simply goes with its next transaction: one instead of two);
* the **bulk** loop routes the rest of the window in order, up to ``max_records`` per
  transaction (MQL nurture, releases, ordinary SQLs).

One lead's transitions keep their order: an express SQL whose lead has an earlier
transition still waiting in the window stays in the bulk's order. Offsets are committed
only up to the first record not yet routed, so a crash re-delivers whatever was not
routed, and routing is keyed by transition id (a repeat is a duplicate). Decisions still
take the routing lock one transaction at a time: an express SQL waits for at most the
bulk transaction in progress (and, with less than ``QUEUED_AHEAD`` queued, shares the
next one), never for the records queued ahead of it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from baton_shared.pipeline import RetryPolicy
from baton_shared.pipeline.commit import CommitStep
from baton_shared.pipeline.decode import DecodeStep
from baton_shared.pipeline.dlq import DeadLetterQueue
from baton_shared.pipeline.handle import Handler, HandleStep
from baton_shared.schemas import Stage, Transition

POLL_TIMEOUT_MS = 500
# Records waiting for the bulk loop (beyond its transaction in progress) from which an
# express SQL is worth a transaction of its own rather than a place in the next one.
QUEUED_AHEAD = 50


@dataclass(eq=False)
class Entry:
    """A consumed record in the window; ``item`` None: nothing to route (dead-lettered
    or none of the router's business)."""

    record: ConsumerRecord
    item: Transition | None
    done: bool = False
    claimed: bool = False  # handed to the express loop


def is_express_sql(t: Transition) -> bool:
    return t.express and t.to_stage == Stage.SQL


class LanePipeline:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        name: str,
        decode: Callable[[ConsumerRecord], Transition | None],
        route: Handler[Transition],
        *,
        retry: RetryPolicy,
        max_records: int,
        lookahead: int,
    ) -> None:
        dlq = DeadLetterQueue(producer, name, retry)
        self._consumer = consumer
        self._decode = DecodeStep(decode, dlq, name)
        self._handle = HandleStep(route, dlq, name, retry)
        self._commit = CommitStep(consumer, name)
        self._committing = asyncio.Lock()
        self._max_records = max_records
        self._lookahead = lookahead
        self._window: deque[Entry] = deque()
        self._waiting = 0  # entries in the window not routed yet
        self._more = asyncio.Event()  # the bulk loop has work
        self._express_queue: asyncio.Queue[list[Entry]] = asyncio.Queue()
        self._in_flight = 0  # entries in the bulk loop's transaction in progress
        self._room = asyncio.Event()  # the window has room
        self._room.set()
        self._committed: dict[TopicPartition, int] = {}

    async def run(self) -> None:
        """Consume until cancelled (or until either loop fails: the supervisor's restart
        reads again from the first record not routed)."""
        self._rewind()
        loops = [asyncio.create_task(loop()) for loop in (self._read, self._bulk, self._fast)]
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
            for loop in done:
                loop.result()
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            self._commit.close()

    def _rewind(self) -> None:
        """Forget the window, and fetch its records not routed yet again."""
        first: dict[TopicPartition, int] = {}
        for entry in self._window:
            if not entry.done:
                tp = TopicPartition(entry.record.topic, entry.record.partition)
                first[tp] = min(first.get(tp, entry.record.offset), entry.record.offset)
        for tp, offset in first.items():
            if tp in self._consumer.assignment():
                self._consumer.seek(tp, offset)
        self._window.clear()
        self._express_queue = asyncio.Queue()
        self._waiting = 0
        self._room.set()

    async def _read(self) -> None:
        while True:
            await self._room.wait()
            batch = await self._consumer.getmany(
                timeout_ms=POLL_TIMEOUT_MS, max_records=self._max_records
            )
            records = [r for p in batch.values() for r in p]
            if not records:
                continue
            items = {id(record): item for record, item in await self._decode(records)}
            entries = [Entry(r, items.get(id(r)), done=id(r) not in items) for r in records]
            if self._waiting - self._in_flight >= QUEUED_AHEAD:  # else: the next transaction
                express = self._express(entries)
                for entry in express:
                    entry.claimed = True
                if express:
                    self._express_queue.put_nowait(express)
            self._window.extend(entries)
            self._waiting += sum(not e.done for e in entries)
            if self._waiting >= self._lookahead:
                self._room.clear()
            self._more.set()  # the bulk loop routes the rest and commits

    def _express(self, entries: list[Entry]) -> list[Entry]:
        """The express SQLs among ``entries`` whose lead has nothing earlier waiting."""
        waiting = {e.item.lead_id for e in self._window if not e.done and e.item is not None}
        express = []
        for entry in entries:
            if entry.item is None:
                continue
            lead = entry.item.lead_id
            if is_express_sql(entry.item) and lead not in waiting:
                express.append(entry)
            waiting.add(lead)
        return express

    async def _fast(self) -> None:
        """The express loop: routes what the reader claimed, as soon as it can."""
        while True:
            entries = await self._express_queue.get()
            while not self._express_queue.empty():
                entries += self._express_queue.get_nowait()
            await self._route(entries)
            self._more.set()  # the bulk loop commits them and routes what waited behind

    async def _bulk(self) -> None:
        while True:
            chunk = self._next_chunk()
            if not chunk:
                self._more.clear()
                await self._commit_routed()  # what the express loop routed, or no work
                await self._more.wait()
                continue
            self._in_flight = len(chunk)
            try:
                await self._route(chunk)
            finally:
                self._in_flight = 0
            await self._commit_routed()

    def _next_chunk(self) -> list[Entry]:
        """Up to ``max_records`` entries not routed yet, in order, leaving out the
        express loop's and whatever of their leads comes after them."""
        chunk: list[Entry] = []
        held: set[str] = set()
        for entry in self._window:
            if entry.done or entry.item is None:
                continue
            lead = entry.item.lead_id
            if entry.claimed or lead in held:
                held.add(lead)
                continue
            chunk.append(entry)
            if len(chunk) >= self._max_records:
                break
        return chunk

    async def _route(self, entries: list[Entry]) -> None:
        await self._handle([(e.record, e.item) for e in entries if e.item is not None])
        for entry in entries:
            entry.done = True
        self._waiting -= len(entries)
        if self._waiting < self._lookahead:
            self._room.set()

    async def _commit_routed(self) -> None:
        """Commit, per partition, up to the first record of the window not routed yet."""
        async with self._committing:
            offsets: dict[TopicPartition, int] = {}
            window = self._window
            while window and window[0].done:
                record = window.popleft().record
                tp = TopicPartition(record.topic, record.partition)
                if record.offset >= self._committed.get(tp, -1):
                    offsets[tp] = self._committed[tp] = record.offset + 1
            if offsets:
                await self._commit.submit(offsets)
