"""Every read and write the router makes to PostgreSQL.

``route_transition`` is the exactly-once step: the consumed transition id, the
assignment and its outbox rows are written in one transaction, and the primary
key on the transition id makes a re-delivered transition a no-op.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_router.strategies import Candidate, assign_round_robin
from baton_router.tables import AssignmentRow, OutboxRow, Rep, RoutedTransition
from baton_shared.schemas import Assignment, Stage, Transition

ROUTING_LOCK = 0x6261746F6E  # one routing decision at a time across all routers ("baton")


@dataclass(frozen=True)
class Routed:
    """What happened to one transition."""

    status: str  # assigned | queued | ignored | duplicate
    assignment: Assignment | None = None


def assignment_payload(assignment: Assignment, transition: Transition) -> dict[str, Any]:
    """The webhook body: what a rep needs to act on the lead."""
    return {
        "type": "lead.assigned",
        "timestamp": assignment.assigned_at.isoformat(),
        "data": {
            **assignment.model_dump(mode="json", by_alias=True),
            "score": transition.score,
            "fit": transition.fit,
            "engagement": transition.engagement,
            "reason": transition.reason,
            "trigger_event": transition.trigger_event,
            "rules_version": transition.rules_version,
        },
    }


class RouterStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], assignments_topic: str):
        self._sessions = sessions
        self._assignments_topic = assignments_topic

    async def create_rep(self, name: str, email: str, webhook_url: str, secret: str) -> Rep:
        async with self._sessions.begin() as session:
            rep = Rep(
                id=uuid.uuid4(),
                name=name,
                email=email,
                webhook_url=webhook_url,
                webhook_secret=secret,
                status="online",
            )
            session.add(rep)
        return rep

    async def list_reps(self) -> list[Rep]:
        async with self._sessions() as session:
            return list((await session.scalars(select(Rep).order_by(Rep.created_at))).all())

    async def current_rep_for(self, lead_id: str) -> uuid.UUID | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(AssignmentRow.rep_id)
                .where(AssignmentRow.lead_id == lead_id)
                .order_by(AssignmentRow.assigned_at.desc())
                .limit(1)
            )

    async def route_transition(self, transition: Transition, now: datetime) -> Routed:
        async with self._sessions.begin() as session:
            status = "queued" if transition.to_stage == Stage.SQL else "ignored"
            inserted = await session.scalar(
                insert(RoutedTransition)
                .values(
                    transition_id=transition.transition_id,
                    lead_id=transition.lead_id,
                    to_stage=transition.to_stage.value,
                    status=status,
                    payload=transition.model_dump(mode="json", by_alias=True),
                )
                .on_conflict_do_nothing()
                .returning(RoutedTransition.transition_id)
            )
            if inserted is None:
                return Routed("duplicate")
            if status == "ignored":
                return Routed("ignored")
            assignment = await self._assign(session, transition, now)
            return Routed("assigned", assignment) if assignment else Routed("queued")

    async def drain_queue(self, now: datetime) -> list[Assignment]:
        """Assign queued SQLs, oldest first, while reps are available."""
        done: list[Assignment] = []
        while True:
            async with self._sessions.begin() as session:
                row = await session.scalar(
                    select(RoutedTransition)
                    .where(RoutedTransition.status == "queued")
                    .order_by(RoutedTransition.received_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                if row is None:
                    return done
                transition = Transition.model_validate(row.payload)
                assignment = await self._assign(session, transition, now)
                if assignment is None:
                    return done
                done.append(assignment)

    async def _assign(
        self, session: AsyncSession, transition: Transition, now: datetime
    ) -> Assignment | None:
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ROUTING_LOCK})
        reps = (await session.scalars(select(Rep).where(Rep.status == "online"))).all()
        chosen = assign_round_robin(
            [Candidate(r.id, r.last_assigned_at, r.created_at) for r in reps]
        )
        if chosen is None:
            return None
        assignment = Assignment(
            assignment_id=str(uuid.uuid4()),
            transition_id=transition.transition_id,
            lead_id=transition.lead_id,
            rep_id=str(chosen.rep_id),
            strategy="round_robin",
            express=transition.express,
            qualified_at=transition.occurred_at,
            assigned_at=now,
        )
        session.add(
            AssignmentRow(
                id=uuid.UUID(assignment.assignment_id),
                transition_id=transition.transition_id,
                lead_id=transition.lead_id,
                rep_id=chosen.rep_id,
                strategy=assignment.strategy,
                express=assignment.express,
                qualified_at=assignment.qualified_at,
                assigned_at=now,
            )
        )
        await session.execute(
            update(Rep).where(Rep.id == chosen.rep_id).values(last_assigned_at=now)
        )
        await session.execute(
            update(RoutedTransition)
            .where(RoutedTransition.transition_id == transition.transition_id)
            .values(status="assigned")
        )
        await session.flush()
        session.add_all(
            [
                OutboxRow(
                    kind="webhook",
                    message_id=f"msg_{assignment.assignment_id}",
                    rep_id=chosen.rep_id,
                    payload=assignment_payload(assignment, transition),
                ),
                OutboxRow(
                    kind="kafka",
                    message_id=f"kafka_{assignment.assignment_id}",
                    topic=self._assignments_topic,
                    key=transition.lead_id,
                    payload=assignment.model_dump(mode="json", by_alias=True),
                ),
            ]
        )
        return assignment

    async def lease_due(self, now: datetime, lease: timedelta, limit: int = 50) -> list[OutboxRow]:
        """Claim due outbox rows for ``lease``; another dispatcher skips them meanwhile,
        and takes them over if this one dies before finishing."""
        async with self._sessions.begin() as session:
            due = (
                select(OutboxRow.id)
                .where(
                    OutboxRow.status == "pending",
                    OutboxRow.next_attempt_at <= now,
                    (OutboxRow.lease_until.is_(None)) | (OutboxRow.lease_until < now),
                )
                .order_by(OutboxRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            rows = await session.scalars(
                update(OutboxRow)
                .where(OutboxRow.id.in_(due.scalar_subquery()))
                .values(lease_until=now + lease)
                .returning(OutboxRow)
            )
            return list(rows.all())

    async def rep(self, rep_id: uuid.UUID) -> Rep | None:
        async with self._sessions() as session:
            return await session.get(Rep, rep_id)

    async def mark_delivered(self, row_id: int, now: datetime) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == row_id)
                .values(
                    status="delivered",
                    delivered_at=now,
                    lease_until=None,
                    attempts=OutboxRow.attempts + 1,
                )
            )

    async def mark_failed(self, row_id: int, error: str, retry_at: datetime | None) -> None:
        values: dict[str, Any] = {
            "last_error": error[:2000],
            "lease_until": None,
            "attempts": OutboxRow.attempts + 1,
        }
        if retry_at is None:
            values["status"] = "dead"
        else:
            values["next_attempt_at"] = retry_at
        async with self._sessions.begin() as session:
            await session.execute(update(OutboxRow).where(OutboxRow.id == row_id).values(**values))

    async def disable_webhook(self, rep_id: uuid.UUID, now: datetime) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(Rep).where(Rep.id == rep_id).values(webhook_disabled_at=now)
            )
