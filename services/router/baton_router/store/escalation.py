"""What happens to an open assignment after it was made: a rep's action closes it (or
keeps it open), and an SLA breach takes it back.

:meth:`EscalationStore.escalate` re-assigns a breached lead to the next available rep of
the same pool (the :class:`Assigner`, excluding the rep it is taken from) or tells the
pool's manager, at most a capped number of times, and tells the original rep with a
``lead.taken_back`` webhook. :meth:`EscalationStore.close_assignment` frees the rep's
capacity when they contacted, rejected, won or lost the lead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_router.payloads import escalated_payload, taken_back_payload
from baton_router.store.assigning import OPEN, Assigner, one_less_open
from baton_router.store.nurture import track_for, tracks
from baton_router.store.outbox import webhook_row
from baton_router.tables import AssignmentRow, Pool, RoutedTransition
from baton_shared.schemas import Assignment, Stage, Transition

#: Rep actions after which the lead still counts against the rep's capacity.
KEEP_OPEN = frozenset({"accepted", "qualified"})


@dataclass(frozen=True)
class Escalated:
    """What a breach did: re-assigned, manager told, capped, or nothing to do."""

    status: str  # reassigned | manager_notified | capped | kept (nobody else) | not_open
    assignment: Assignment | None = None


class EscalationStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], assigner: Assigner):
        self._sessions = sessions
        self._assigner = assigner

    async def close_assignment(
        self, lead_id: str, rep_id: uuid.UUID | None, kind: str, now: datetime
    ) -> AssignmentRow | None:
        """A rep's action on their open lead: ``contacted``, ``rejected``, ``won`` and
        ``lost`` free the slot (it no longer counts against capacity); ``accepted`` and
        ``qualified`` (the rep is still working the lead) keep it open."""
        async with self._sessions.begin() as session:
            query = select(AssignmentRow).where(
                AssignmentRow.lead_id == lead_id, AssignmentRow.status == OPEN
            )
            if rep_id is not None:
                query = query.where(AssignmentRow.rep_id == rep_id)
            row = await session.scalar(
                query.order_by(AssignmentRow.assigned_at.desc()).limit(1).with_for_update()
            )
            if row is None or kind in KEEP_OPEN:
                return row
            row.status = kind
            row.closed_at = now
            await one_less_open(session, row.rep_id)
            return row

    async def escalate(
        self, assignment_id: uuid.UUID, now: datetime, max_reassignments: int
    ) -> Escalated:
        """An SLA breach on ``assignment_id``: take the lead back and give it to the next
        available rep of the same pool's policy, or tell the pool's manager; at most
        ``max_reassignments`` times per lead (the pool's own cap wins when set)."""
        async with self._sessions.begin() as session:
            previous = await session.get(AssignmentRow, assignment_id, with_for_update=True)
            if previous is None or previous.status != OPEN:
                return Escalated("not_open")
            pool = await session.get(Pool, previous.pool_id) if previous.pool_id else None
            cap = pool.max_reassignments if pool else max_reassignments
            if previous.reassignments >= cap:
                return Escalated("capped")
            first = await session.get(RoutedTransition, previous.transition_id)
            if first is None:
                return Escalated("not_open")
            transition = Transition.model_validate(first.payload)
            if transition.lead_id != previous.lead_id:  # a merge moved it to its survivor
                transition = transition.model_copy(update={"lead_id": previous.lead_id})
            if pool is not None and pool.escalation == "manager" and pool.manager_rep_id:
                previous.status = "escalated"
                await one_less_open(session, previous.rep_id)
                payload = escalated_payload(
                    previous.id, previous.lead_id, previous.rep_id, pool.name, now
                )
                session.add(
                    webhook_row(f"msg_escalated_{previous.id}", pool.manager_rep_id, payload)
                )
                return Escalated("manager_notified")
            return await self._reassign(session, previous, transition, now)

    async def _reassign(
        self,
        session: AsyncSession,
        previous: AssignmentRow,
        transition: Transition,
        now: datetime,
    ) -> Escalated:
        sdr = None
        if previous.stage == Stage.MQL.value and previous.pool_id is not None:
            # An SDR task: the next SDR of the same pool takes it over.
            track = track_for(await tracks(session), transition)
            sdr = {transition.transition_id: (previous.pool_id, track.name if track else None)}
        assigned = await self._assigner.assign(
            session,
            [transition],
            now,
            exclude=frozenset({previous.rep_id}),
            previous=previous,
            sdr=sdr,
        )
        if not assigned:
            return Escalated("kept")
        [assignment] = assigned.values()
        previous.status = "taken_back"
        previous.closed_at = now
        await one_less_open(session, previous.rep_id)
        payload = taken_back_payload(
            previous.id, previous.lead_id, previous.rep_id, "sla_breached", assignment.rep_id, now
        )
        session.add(webhook_row(f"msg_taken_back_{previous.id}", previous.rep_id, payload))
        return Escalated("reassigned", assignment)
