"""faust-streaming's Kafka consumer, with records handed to the streams without a race.

faust's ``Consumer._drain_messages`` hands every fetched record to the streams with
``await self.wait_first(callback(message), self.suspend_flow.wait())``. ``wait_first``
wraps each awaitable — plus the service's ``stopped`` and ``crashed`` events — in a
task, runs ``asyncio.wait`` over the four, and cancels the three losers: per record.
That costs more than scoring the record (``bench/scorer.py`` measures a worker).

The race exists for rebalances: when faust suspends the flow, a hand-over blocked in
flow control must give up so the consumer can move on. So the override keeps it
exactly then — whenever ``suspend_flow`` is set — and hands over directly otherwise.
On the direct path the hand-over checks flow control at its start (it is active),
so it can only wait on a full stream buffer, which the agent drains.

The override is upstream's method (faust-streaming 0.15.3) with that one change.
:data:`UPSTREAM_SHA256` pins the upstream source it was taken from;
``tests/scorer/test_faust_consumer.py`` fails when an upgrade changes it, so the
override is re-ported rather than silently diverging.

:meth:`BatonConsumer.ack` closes a loss in faust's rebalance. A stream that takes a
record off its queue while the flow is suspended (partitions being revoked, the worker
stopping) or after the group's generation moved on *skips* it and acks it unprocessed;
the revocation's commit then moves the group's offset past a record nobody scored, and
its transition is never emitted. An ack in that window is not counted: the record stays
uncommitted and whoever owns its partition next reads it again (a batch that finished
in the window is scored twice; the scorer's event-id dedup and deterministic
transition ids make that invisible downstream). :data:`UPSTREAM_ACK_SHA256` pins the
upstream ``ack`` whose bookkeeping this relies on.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import Message
from mode import Service, ServiceT

from baton_scorer.metrics import REBALANCE_REREADS as REREAD

#: sha256 (first 16 hex) of ``inspect.getsource(faust.transport.consumer.Consumer.
#: _drain_messages)`` in the version this override was ported from.
UPSTREAM_SHA256 = "44a2500309e83c63"
#: The same of ``faust.transport.consumer.Consumer.ack``.
UPSTREAM_ACK_SHA256 = "5fcf41cf45153475"


class BatonConsumer(AIOKafkaConsumer):
    """faust's aiokafka consumer with records handed to the streams without a race,
    and never a record committed that a rebalance skipped."""

    def ack(self, message: Message) -> bool:
        """Count ``message`` as done, unless acked mid-rebalance (see the module)."""
        app = self.app
        if app.flow_control.is_active() and message.generation_id == app.consumer_generation_id:
            return bool(super().ack(message))
        # Done with for faust's wait for in-flight records, but its offset not recorded:
        # it is read again from the committed offset.
        message.acked = True
        self._unacked_messages.discard(message)
        REREAD.inc()
        return False

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

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = cast(Any, getmany(timeout=1.0))
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0

                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset:
                                if acks_enabled_for(message.topic):
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
