"""SLA warnings to the people who can act on them, through the outbox.

:meth:`NudgeStore.at_risk`: an ``at_risk`` clock on a rep's open assignment nudges the
rep: a signed ``lead.sla_at_risk`` webhook (with the assignment's one-click links) and,
when the rep (or else the pool) has Slack, a Block Kit message.
:meth:`NudgeStore.breached`: after a breach was escalated (``EscalationStore``), the
pool's manager gets a Slack message saying what happened to the lead (re-assigned, left
for them to act on, or kept by the rep); their webhook already gets ``lead.escalated``
when the pool escalates to the manager.

Each message's id derives from the SLA event (or the assignment), so a re-delivered
event sends nothing twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_router.notices import sla_payload
from baton_router.payloads import PayloadContext
from baton_router.slack import notice_message
from baton_router.store.assigning import OPEN
from baton_router.store.outbox import outbox_values
from baton_router.tables import AssignmentRow, OutboxRow, Pool, Rep, RoutedTransition
from baton_shared.ids import stable_id
from baton_shared.schemas import SlaEvent, SlaMeasure, Transition

#: An assignment's status after a breach was escalated, as the manager is told it.
BREACH_OUTCOMES = {"taken_back": "reassigned", "escalated": "manager_notified", OPEN: "kept"}
#: The statuses of an assignment a minimum-contact-attempts clock still concerns: the
#: rep's first ``contacted`` closes the assignment, the attempts go on.
WORKED = (OPEN, "contacted")


class NudgeStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], context: PayloadContext):
        self._sessions, self._context = sessions, context

    async def at_risk(self, event: SlaEvent, now: datetime) -> bool:
        """Nudge the rep whose assignment ``event`` warns about (open; or contacted, for
        too few contact attempts); False when it is closed otherwise (or unknown) or the
        nudge was sent already."""
        async with self._sessions.begin() as session:
            row = await session.get(AssignmentRow, uuid.UUID(event.assignment_id or ""))
            if row is None or row.status not in _concerned(event):
                return False
            extra: dict[str, Any] = {}
            if self._context.links is not None:
                extra["links"] = self._context.links.links(row.id, row.rep_id, row.assigned_at)
            payload = sla_payload("at_risk", event, await _qualified(session, row), now, **extra)
            rep, pool = await _rep_and_pool(session, row)
            key = stable_id("at_risk", event.event_id)
            rows = [
                outbox_values(
                    kind="webhook", message_id=f"msg_at_risk_{key}", rep_id=row.rep_id,
                    payload=payload,
                )
            ]  # fmt: skip
            slack = (rep.slack_webhook_url if rep else None) or (
                pool.slack_webhook_url if pool else None
            )
            if slack:
                rows.append(slack_notice(f"slack_at_risk_{key}", row.rep_id, slack, payload))
            return await _insert_new(session, rows)

    async def breached(self, event: SlaEvent, now: datetime) -> bool:
        """Tell the manager of the breached assignment's pool on Slack what the breach
        did; False when there is nobody to tell (no pool, no manager, no Slack URL), the
        lead left the rep otherwise (contacted, rejected, recycled, ...) or they were
        told already."""
        async with self._sessions.begin() as session:
            row = await session.get(AssignmentRow, uuid.UUID(event.assignment_id or ""))
            outcome = BREACH_OUTCOMES.get(row.status) if row is not None else None
            if row is not None and event.measure == SlaMeasure.ATTEMPTS:
                outcome = "kept" if row.status in WORKED else None
            if row is None or outcome is None:
                return False
            rep, pool = await _rep_and_pool(session, row)
            manager = (
                await session.get(Rep, pool.manager_rep_id)
                if pool is not None and pool.manager_rep_id
                else None
            )
            if pool is None or manager is None or not manager.slack_webhook_url:
                return False
            payload = sla_payload(
                "breached",
                event,
                await _qualified(session, row),
                now,
                pool=pool.name,
                outcome=outcome,
                rep_name=rep.name if rep else None,
            )
            url = manager.slack_webhook_url
            key = stable_id("breach", str(row.id), event.clock_id)  # once per clock
            return await _insert_new(
                session, [slack_notice(f"slack_breach_{key}", manager.id, url, payload)]
            )


def _concerned(event: SlaEvent) -> tuple[str, ...]:
    return WORKED if event.measure == SlaMeasure.ATTEMPTS else (OPEN,)


async def _qualified(session: AsyncSession, row: AssignmentRow) -> Transition | None:
    """The transition the assignment stems from: who the lead is."""
    routed = await session.get(RoutedTransition, row.transition_id)
    return Transition.model_validate(routed.payload) if routed is not None else None


async def _rep_and_pool(
    session: AsyncSession, row: AssignmentRow
) -> tuple[Rep | None, Pool | None]:
    rep = await session.get(Rep, row.rep_id)
    pool = await session.get(Pool, row.pool_id) if row.pool_id else None
    return rep, pool


def slack_notice(
    message_id: str, rep_id: uuid.UUID, url: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """The outbox row of a ``notices.py`` payload posted to a Slack incoming webhook."""
    return outbox_values(
        kind="slack",
        message_id=message_id,
        rep_id=rep_id,
        target_url=url,
        payload=notice_message(payload),
    )


async def _insert_new(session: AsyncSession, rows: list[dict[str, Any]]) -> bool:
    """Insert the outbox rows not written before (by message id); whether any were."""
    inserted = (
        await session.scalars(
            insert(OutboxRow).values(rows).on_conflict_do_nothing().returning(OutboxRow.id)
        )
    ).all()
    return bool(inserted)
