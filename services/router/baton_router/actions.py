"""What the HTTP API may ask of a running router, beyond plain configuration reads.

Each action writes through the stores, then nudges the process that must react: a change
that could make a rep available drains the queue at once, a replayed dead letter wakes
the dispatcher, and a rep's activity (from the API or a one-click link) is published to
``leads.activity`` (acknowledged by Kafka, or :class:`KafkaUnavailable`) before it frees
the rep's capacity.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiokafka import AIOKafkaProducer

from baton_router.dispatcher import Dispatcher
from baton_router.links import LinkClaim
from baton_router.queue_drain import QueueDrainer
from baton_router.store import Stores
from baton_router.store.escalation import KEEP_OPEN
from baton_router.tables import AssignmentRow, OutboxRow, Rep
from baton_shared.clock import utcnow
from baton_shared.dispositions import Disposition
from baton_shared.ids import stable_id
from baton_shared.schemas import Activity, ActivityKind

PUBLISH_TIMEOUT_SECONDS = 10


class KafkaUnavailable(RuntimeError):
    pass


class RouterActions:
    def __init__(
        self,
        stores: Stores,
        drainer: QueueDrainer,
        dispatcher: Dispatcher,
        producer: AIOKafkaProducer,
        activity_topic: str,
    ):
        self._stores, self._drainer, self._dispatcher = stores, drainer, dispatcher
        self._producer, self._activity_topic = producer, activity_topic

    async def create_rep(
        self, name: str, email: str, webhook_url: str, secret: str, **profile: Any
    ) -> Rep:
        rep = await self._stores.config.create_rep(name, email, webhook_url, secret, **profile)
        await self._drainer.drain()
        return rep

    async def update_rep(self, rep_id: uuid.UUID, changes: dict[str, Any]) -> Rep:
        rep = await self._stores.config.update_rep(rep_id, changes)
        await self._drainer.drain()
        return rep

    async def configuration_changed(self) -> None:
        """Pools or rules changed: someone may be able to take a queued lead now."""
        await self._drainer.drain()

    async def record_activity(self, activity: Activity, rep_id: uuid.UUID | None) -> None:
        """Publish a rep's action; a lead contacted, rejected, won or lost then no longer
        counts against the rep's capacity (see ``EscalationStore.close_assignment``)."""
        try:
            await asyncio.wait_for(
                self._producer.send_and_wait(
                    self._activity_topic, activity.to_bytes(), key=activity.lead_id.encode()
                ),
                timeout=PUBLISH_TIMEOUT_SECONDS,
            )
        except Exception as exc:
            raise KafkaUnavailable(str(exc)) from exc
        kind = activity.kind.value
        await self._stores.escalation.close_assignment(activity.lead_id, rep_id, kind, utcnow())
        if kind not in KEEP_OPEN:
            await self._drainer.drain()

    async def follow_link(
        self, claim: LinkClaim, disposition: Disposition | None, note: str | None
    ) -> Activity:
        """A rep's one-click link: spend it and record its activity as
        :meth:`record_activity` does for the API, all or nothing (Kafka down: the link
        stays unused). Raises the link's refusal (used, or no longer the rep's lead)."""
        recorded: list[Activity] = []

        async def act(row: AssignmentRow) -> None:
            activity = Activity(
                activity_id=stable_id("link", claim.token_id),
                lead_id=row.lead_id,
                rep_id=str(claim.rep_id),
                kind=ActivityKind(claim.action.activity_kind),
                reason=note,
                disposition=disposition.value if disposition else None,
                occurred_at=utcnow(),
                assignment_id=str(row.id),
            )
            await self.record_activity(activity, claim.rep_id)
            recorded.append(activity)

        await self._stores.one_click.redeem(claim, act)
        return recorded[0]

    async def replay(self, row_id: int) -> OutboxRow | None:
        """A dead message back in line, delivered at once."""
        row = await self._stores.outbox.replay(row_id, utcnow())
        if row is not None:
            self._dispatcher.wake()
        return row
