"""What the router does with the records it consumes: the business steps its consume
loops are handed.

``leads.transitions``: :func:`decode_transition` (anything else is poison, to the DLQ),
then :meth:`Intake.route` routes the whole batch in one transaction and hands the outbox
rows it leased straight to the dispatcher. ``leads.sla``: :func:`decode_breach` keeps a
rep's ``at_risk`` and ``breached`` clocks; :meth:`Intake.escalate` nudges the rep on the
first, and on the second re-assigns or tells the manager (and the manager's Slack).
``leads.merges``: :meth:`Intake.merge` moves a merged lead's assignment to its survivor.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

from aiokafka.structs import ConsumerRecord

from baton_router.dispatcher import Dispatcher
from baton_router.metrics import (
    CONSUME_LAG,
    ESCALATIONS,
    NURTURED,
    QUEUE_DEPTH,
    QUEUED,
    ROUTE_BATCH,
    record_assigned,
)
from baton_router.store import Stores
from baton_router.store.routing_writes import Routed
from baton_shared.clock import utcnow
from baton_shared.consumer import refuse_nul
from baton_shared.logs import get_logger
from baton_shared.schemas import (
    LeadMerged,
    SlaEvent,
    SlaMeasure,
    SlaStatus,
    Transition,
    decode,
)

log = get_logger(__name__)

#: The SLA events a rep's assignment reacts to.
ALERTS = (SlaStatus.AT_RISK, SlaStatus.BREACHED)
REP_CLOCKS = (SlaMeasure.FIRST_TOUCH, SlaMeasure.ATTEMPTS)


Opener = Callable[[list[Transition]], Awaitable[list[Transition]]]


class Intake:
    def __init__(
        self,
        stores: Stores,
        dispatcher: Dispatcher,
        max_reassignments: int,
        opener: Opener | None = None,
    ):
        self._stores, self._dispatcher = stores, dispatcher
        self._max_reassignments = max_reassignments
        self._open = opener  # privacy mode: opens the sealed email and traits

    async def route(self, transitions: list[Transition]) -> None:
        """Route one consumed batch; its rows leased in the transaction go to the
        dispatcher at once, the others through its claim loop."""
        if self._open is not None:
            transitions = await self._open(transitions)
        now = utcnow()
        for transition in transitions:
            if transition.emitted_at is not None:
                CONSUME_LAG.observe(max(0.0, (now - transition.emitted_at).total_seconds()))
        started = time.monotonic()
        results = await self._stores.routing.route_batch(transitions, now)
        ROUTE_BATCH.observe(time.monotonic() - started)
        fresh = [leased for routed in results for leased in routed.outbox]
        if fresh:
            await self._dispatcher.submit(fresh)
        if any(_left_for_claim(routed) for routed in results):
            self._dispatcher.wake()
        for transition, routed in zip(transitions, results, strict=True):
            if routed.assignment is not None:
                record_assigned(routed.assignment)
            if routed.status == "queued":
                QUEUED.inc()
                QUEUE_DEPTH.inc()
                log.warning("lead_queued_no_rep_available", lead_id=transition.lead_id)
            elif routed.status == "nurtured":
                NURTURED.inc()
                log.info("lead_nurtured", lead_id=transition.lead_id)

    async def merge(self, records: list[LeadMerged]) -> None:
        """A batch of merges, in one transaction."""
        for done in await self._stores.merges.apply(records, utcnow()):
            log.info(
                "lead_merged",
                lead_id=done.merged_id,
                survivor_id=done.survivor_id,
                kept=str(done.kept.id) if done.kept else None,
                closed=len(done.closed),
            )

    async def escalate(self, event: SlaEvent | None) -> None:
        """An SLA warning or breach on a rep's assignment (None: a record this router
        skips)."""
        if event is None:
            return
        if event.status == SlaStatus.AT_RISK:
            await self._stores.nudges.at_risk(event, utcnow())
            return
        if event.measure == SlaMeasure.ATTEMPTS:
            # The rep works the lead, too little: their manager hears of it; the lead stays.
            await self._stores.nudges.breached(event, utcnow())
            return
        outcome = await self._stores.escalation.escalate(
            uuid.UUID(event.assignment_id), utcnow(), self._max_reassignments
        )
        ESCALATIONS.labels(outcome=outcome.status).inc()
        await self._stores.nudges.breached(event, utcnow())
        if outcome.assignment is not None:
            record_assigned(outcome.assignment)
        log.info(
            "sla_breach_escalated",
            lead_id=event.lead_id,
            assignment_id=event.assignment_id,
            outcome=outcome.status,
        )


def _left_for_claim(routed: Routed) -> bool:
    """Outbox rows the routing transaction wrote without leasing them to this router:
    nurture webhooks, an SDR's ``lead.taken_back``, a released lead's notices, and
    webhooks to an endpoint at its concurrency limit."""
    if routed.status in ("nurtured", "released") or routed.sdr_told:
        return True
    return routed.assignment is not None and not any(
        leased.row.kind == "webhook" for leased in routed.outbox
    )


def decode_transition(record: ConsumerRecord) -> Transition:
    """A transition the router can store; anything else is poison (to the DLQ)."""
    refuse_nul(record.value)  # the whole transition is kept as JSONB
    transition = decode(Transition, record.value)
    if len(transition.transition_id) > 64 or len(transition.lead_id) > 256:
        raise ValueError("transition_id over 64 or lead_id over 256 characters")
    return transition


def decode_merge(record: ConsumerRecord) -> LeadMerged:
    """A merge whose ids fit the router's columns; anything else is poison (to the DLQ)."""
    refuse_nul(record.value)
    merge = decode(LeadMerged, record.value)
    if max(len(merge.merged_id), len(merge.survivor_id)) > 256:
        raise ValueError("a lead id over 256 characters")
    return merge


def decode_breach(record: ConsumerRecord) -> SlaEvent | None:
    """Only a rep's ``at_risk`` and ``breached`` clocks matter here (``measure``
    first_touch or attempts, with an assignment); others decode to None and are skipped.
    The pipeline's own clocks (``measure`` assign) name no rep: nobody to take the lead
    from."""
    event = decode(SlaEvent, record.value)
    if event.status not in ALERTS or event.assignment_id is None:
        return None
    if event.measure not in REP_CLOCKS:
        return None
    uuid.UUID(event.assignment_id)  # ValueError → DLQ: not an assignment of this router
    return event
