"""faust-streaming's Kafka consumer, with the hand-over of records made cheaper and its
offset commits made safe around rebalances.

**Hand-over.** faust's ``Consumer._drain_messages`` hands every fetched record to the
streams with ``await self.wait_first(callback(message), self.suspend_flow.wait())``.
``wait_first`` wraps each awaitable — plus the service's ``stopped`` and ``crashed``
events — in a task, runs ``asyncio.wait`` over the four, and cancels the three losers:
per record. That costs more than scoring the record (``bench/scorer.py`` measures a
worker). The race exists for rebalances: when faust suspends the flow, a hand-over
blocked in flow control must give up so the consumer can move on. So the override
keeps it exactly then — whenever ``suspend_flow`` is set — and hands over directly
otherwise; on the direct path the hand-over can only wait on a full stream buffer,
which the agent drains.

**Commits.** faust commits a partition up to the last of a run of acked offsets, and
around a rebalance a record can be acked unprocessed, or never handed over, while
later ones are scored; a commit past it loses its transition for good (the kill,
rolling-restart and scale-out tests caught all three):

- a stream that takes a record off its queue while the flow is suspended (partitions
  being revoked, the worker stopping) or after the group's generation moved on skips
  it *and acks it*. :meth:`BatonConsumer.ack` does not count an ack made in that
  window: the record stays uncommitted and its partition's next owner reads it again
  (a batch that finished in the window is scored twice, which the scorer's event-id
  dedup and deterministic transition ids make invisible downstream);
- a record fetched before the latest rebalance would be skipped the same way, and its
  offset kept as read, so the copies the rebalance's seek fetches again look old and
  are dropped. The drain loop drops it instead, unread, and hands over a stream's
  records below the read offset rather than dropping them as already read;
- upstream commits past a single missing offset at the head of the acked ones, and
  past any number when the partition has no committed offset yet.
  :meth:`BatonConsumer._new_offset` commits only a run that starts at the committed
  offset (with none, at the first offset handed over since the rebalance), and when
  the record there stays unprocessed for :data:`HOLE_SECONDS` while later ones are
  done, the drain loop seeks the partition back to it;
- a rebalance's seek to the committed offsets leaves a stream partition with none
  where it is, past records that were fetched but not scored: those are sought to their
  beginning (:meth:`BatonConsumer.seek_to_committed`);
- a partition left with records to read and none handed over or done for
  :data:`HOLE_SECONDS` (and not paused by faust because its stream buffer is full,
  which is back-pressure, not a stall) is fetched again from its committed offset
  (both counted in ``baton_scorer_partition_rereads_total``).

Changelog partitions are left where recovery put them: none has a committed offset, so
seeking them would send standby copies back to their beginning at every rebalance, and
faust's ``seek`` calls aiokafka from the event loop's thread while aiokafka's fetcher
reads those partitions in the consumer's thread (it fails with ``KeyError`` when the
record buffer changes under it). Stream partitions are sought with faust's ``seek``, as
faust's own code does.

The overrides are upstream's (faust-streaming 0.15.3) with those changes; the
``UPSTREAM_*`` digests pin the sources they were taken from, and
``tests/scorer/test_faust_consumer.py`` fails when an upgrade changes one, so the
override is re-ported rather than silently diverging. Baton's input topics carry no
transaction markers (no producer writes them in a transaction), so the offsets of a
partition's records are consecutive and a missing one is a record not processed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP, Message
from mode import Service, ServiceT

from baton_scorer.metrics import PARTITION_REREADS, REBALANCE_REREADS
from baton_shared.logs import get_logger

log = get_logger(__name__)

#: sha256 (first 16 hex) of ``inspect.getsource(faust.transport.consumer.Consumer.
#: _drain_messages)`` in the version this override was ported from.
UPSTREAM_SHA256 = "44a2500309e83c63"
#: The same of ``Consumer.ack`` and ``Consumer._new_offset``.
UPSTREAM_ACK_SHA256 = "5fcf41cf45153475"
UPSTREAM_NEW_OFFSET_SHA256 = "1d2c7ea89a7ad4f1"

#: How long the record at a partition's committed offset may stay unprocessed while
#: later ones are done before the partition is read again from it.
HOLE_SECONDS = 5.0


class BatonConsumer(AIOKafkaConsumer):
    """faust's aiokafka consumer: records handed to the streams without a race, and
    never an offset committed past a record not processed (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._holes: dict[TP, tuple[int, float]] = {}  # committed offset, since when
        self._rereads: dict[TP, int] = {}  # partitions for the drain loop to seek back
        self._progress: dict[TP, float] = {}  # when a record was last handed over or done
        self._progress_generation = -1
        self._first: dict[TP, tuple[int, int]] = {}  # generation, first offset handed over

    def ack(self, message: Message) -> bool:
        """Count ``message`` as done, unless acked mid-rebalance."""
        app = self.app
        if app.flow_control.is_active() and message.generation_id == app.consumer_generation_id:
            self._progress[message.tp] = time.monotonic()
            return bool(super().ack(message))
        # Done with for faust's wait for in-flight records, but its offset not recorded:
        # it is read again from the committed offset.
        message.acked = True
        self._unacked_messages.discard(message)
        REBALANCE_REREADS.inc()
        return False

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit for ``tp``: upstream's, from a run of acked offsets that
        starts at the committed one (a known gap there aside), else none."""
        start = self._start(tp)
        acked = self._acked[tp]
        if start is not None and acked and min(acked) > start and not self._gap[tp].overlaps(start):
            self._hole_at(tp, start)
            return None
        self._holes.pop(tp, None)
        return cast(int | None, super()._new_offset(tp))

    def _start(self, tp: TP) -> int | None:
        """Where ``tp``'s next commit must start: the committed offset, or with none
        yet, the first offset handed over since the latest rebalance."""
        committed = self._committed_offset[tp]
        if committed is not None:
            return int(committed)
        first = self._first.get(tp)
        if first is not None and first[0] == self.app.consumer_generation_id:
            return first[1]
        return None

    def _hole_at(self, tp: TP, offset: int) -> None:
        now = time.monotonic()
        held = self._holes.get(tp)
        if held is None or held[0] != offset:
            self._holes[tp] = (offset, now)
        elif now - held[1] >= HOLE_SECONDS:
            self._holes[tp] = (offset, now)
            self._rereads[tp] = offset

    def _watch_idle(self, now: float) -> None:
        """Mark for reading again the partitions that have records to read and made no
        progress for :data:`HOLE_SECONDS` (the clock starts at each assignment)."""
        app = self.app
        if self._progress_generation != app.consumer_generation_id:
            self._progress_generation = app.consumer_generation_id
            self._progress.clear()
        if app.rebalancing or not app.flow_control.is_active():
            return
        parked = self._buffered_partitions  # paused while their stream buffer is full
        for tp in self.assignment():
            if tp in parked or not app.topics.acks_enabled_for(tp.topic):
                continue  # back-pressure; changelogs are recovery's to read
            since = self._progress.setdefault(tp, now)
            start = self._start(tp)
            highwater = self.highwater(tp)
            if (
                now - since >= HOLE_SECONDS
                and start is not None
                and highwater is not None
                and highwater > start
            ):
                self._progress[tp] = now
                self._rereads[tp] = start

    async def seek_to_committed(self) -> Any:
        """Seek every partition to its committed offset, and the stream partitions with
        none (or 0) to their beginning: aiokafka leaves those where they are, so records
        fetched before a rebalance and not scored would never be read again. Changelog
        partitions are recovery's to place."""
        committed = await super().seek_to_committed()
        acked = self.app.topics.acks_enabled_for
        fresh = [tp for tp, offset in committed.items() if not offset and acked(tp.topic)]
        if fresh:
            earliest = await self.earliest_offsets(*fresh)
            for tp in fresh:
                await self.seek(tp, earliest.get(tp) or 0)
        return committed

    async def _seek_back(self) -> None:
        """Read again, from their committed offset, the partitions with a record there
        that was never processed (still ours, nothing committed since)."""
        rereads, self._rereads = self._rereads, {}
        assigned = self.assignment()
        for tp, offset in rereads.items():
            if tp in assigned and self._start(tp) == offset:
                log.warning(
                    "partition_read_again", topic=tp.topic, partition=tp.partition, offset=offset
                )
                PARTITION_REREADS.inc()
                await self.seek(tp, offset)

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set

        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        app = self.app
        progress = self._progress
        firsts = self._first

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            watched = time.monotonic()
            while not (consumer_should_stop() or fetcher_should_stop()):
                now = time.monotonic()
                if now - watched >= 1.0:
                    watched = now
                    self._watch_idle(now)
                if self._rereads:  # between fetches: no record of the old position in hand
                    await self._seek_back()
                set_flag(CONSUMER_FETCHING)
                ait = cast(Any, getmany(timeout=1.0))
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0

                        if message.generation_id != app.consumer_generation_id:
                            # Fetched before a rebalance: the seek that ends it reads the
                            # record again; handed over, it would only be skipped, and
                            # its offset would make the re-read copies look old.
                            continue
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        # A stream's record below the read offset is handed over too:
                        # after a seek, records fetched before it have moved the read
                        # offset past copies that were never scored (a repeat is
                        # absorbed by the scorer's event-id dedup).
                        acked_topic = acks_enabled_for(message.topic)
                        if r_offset is None or offset >= r_offset or acked_topic:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset:
                                if acked_topic:
                                    await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None:
                                if self._n_acked >= commit_every:
                                    self._n_acked = 0
                                    await self.commit()
                            if self.suspend_flow.is_set():  # a rebalance: upstream's race
                                await self.wait_first(callback(message), self.suspend_flow.wait())
                            else:  # the flow is active: hand the record over directly
                                await callback(message)
                            set_read_offset(tp, offset)
                            progress[tp] = now
                            first = firsts.get(tp)
                            generation = message.generation_id
                            if first is None or first[0] != generation or offset < first[1]:
                                firsts[tp] = (generation, offset)
                        else:
                            self.log.dev(
                                "DROPPED MESSAGE ROFF %r: k=%r v=%r",
                                offset,
                                message.key,
                                message.value,
                            )
                    unset_flag(CONSUMER_FETCHING)

        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)
