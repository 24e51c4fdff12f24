"""Routing a consumed batch of transitions, and draining the queue: the exactly-once step.

:meth:`RoutingStore.route_batch` writes, in one transaction, the consumed transition ids
(the primary key makes a re-delivered transition a ``duplicate`` no-op), each new SQL's
assignment (or its place in the queue), each new MQL's nurture enrolment and SDR task,
each recycled or disqualified lead's release (``release.release_leads``), each new
customer's and re-routed SQL's handling (:mod:`baton_router.store.outcomes`), and every
outbox row they need. :meth:`RoutingStore.drain_queue` later assigns what
waited, once someone is available. Deciding and writing is the :class:`Assigner`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_router.store.assigning import Assigner, set_routed_status
from baton_router.store.merges import MERGED, follow_merges
from baton_router.store.nurture import enrol_in_nurture, sdr_tasks, supersede_sdr_tasks
from baton_router.store.outbox import Leased
from baton_router.store.outcomes import close_customers, reroute
from baton_router.store.release import RELEASING, release_leads
from baton_router.tables import RoutedTransition
from baton_shared.schemas import Assignment, ReasonKind, Stage, Transition


@dataclass(frozen=True)
class Routed:
    """What happened to one transition."""

    status: str  # assigned | queued | ignored | duplicate | nurtured | released | merged
    assignment: Assignment | None = None
    # Outbox rows written already leased to this router (see ``Assigner.fast_lease``).
    outbox: tuple[Leased, ...] = field(default=(), compare=False, repr=False)
    # The lead's SDR task was superseded: a ``lead.taken_back`` row waits for the claim loop.
    sdr_told: bool = field(default=False, compare=False)


class RoutingStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], assigner: Assigner):
        self._sessions = sessions
        self.assigner = assigner

    async def route_batch(self, transitions: list[Transition], now: datetime) -> list[Routed]:
        """Route a batch in one transaction: record every transition id (a repeat is a
        ``duplicate``), decide each new SQL in order against the team as the previous
        decisions left it, enrol new MQLs in nurture, and write assignments and outbox
        rows. A few statements per batch, whatever its size."""
        assign = self.assigner.assign
        async with self._sessions.begin() as session:
            firsts = list({t.transition_id: t for t in reversed(transitions)}.values())[::-1]
            inserted = set(
                (
                    await session.scalars(
                        insert(RoutedTransition)
                        .values([_routed_row(t) for t in firsts])
                        .on_conflict_do_nothing()
                        .returning(RoutedTransition.transition_id)
                    )
                ).all()
            )
            new = [t for t in firsts if t.transition_id in inserted]
            merged = await follow_merges(session, new, now) if new else set()
            to_route = [t for t in new if t.transition_id not in merged]
            sqls = [t for t in to_route if t.to_stage == Stage.SQL]
            mqls = [t for t in to_route if t.to_stage == Stage.MQL]
            fresh: list[Leased] = []
            told: set[str] = set()
            leaving = [t for t in to_route if t.to_stage in RELEASING]
            released = await release_leads(session, leaving, now) if leaving else {}
            if won := [t for t in to_route if t.to_stage == Stage.CUSTOMER]:
                released |= await close_customers(session, won, now)
            if sqls:
                told = await supersede_sdr_tasks(session, [t.lead_id for t in sqls], now)
            rerouted = [t for t in sqls if t.reason_kind == ReasonKind.REROUTE]
            if rerouted:
                sqls = [t for t in sqls if t.reason_kind != ReasonKind.REROUTE]
            assigned = await assign(session, sqls, now, fresh=fresh) if sqls else {}
            if rerouted:
                assigned |= await reroute(session, self.assigner, rerouted, now)
            nurtured, sdr = await enrol_in_nurture(session, mqls) if mqls else (set(), {})
            unenrolled = [t.transition_id for t in mqls if t.transition_id not in nurtured]
            if unenrolled:
                await set_routed_status(session, unenrolled, "ignored")
            if sdr:
                tasks = [t for t in mqls if t.transition_id in sdr]
                assigned |= await assign(session, tasks, now, fresh=fresh, sdr=sdr)
                waiting = [tid for tid in sdr if tid not in assigned]
                if waiting:
                    await set_routed_status(session, waiting, "sdr_queued")
        results = _outcomes(new, assigned, nurtured, fresh)
        results |= {tid: Routed(status) for tid, status in released.items()}
        results |= {tid: Routed(MERGED) for tid in merged}
        seen: set[str] = set()
        out = []
        for t in transitions:
            first_time = t.transition_id in results and t.transition_id not in seen
            seen.add(t.transition_id)
            if not first_time:
                out.append(Routed("duplicate"))
                continue
            routed = results[t.transition_id]
            if t.to_stage == Stage.SQL and t.lead_id in told:
                routed = replace(routed, sdr_told=True)
            out.append(routed)
        return out

    async def queue_depth(self) -> int:
        async with self._sessions() as session:
            return int(
                await session.scalar(
                    select(func.count()).where(RoutedTransition.status == "queued")
                )
                or 0
            )

    async def drain_queue(self, now: datetime, batch: int = 500) -> list[Assignment]:
        """Assign queued SQLs (and MQLs waiting for an SDR), oldest first, to whoever is
        available now. A lead nobody can take yet (its pool is off shift) stays queued
        without blocking the others."""
        assign = self.assigner.assign
        async with self._sessions.begin() as session:
            queued = (
                await session.scalars(
                    select(RoutedTransition)
                    .where(RoutedTransition.status.in_(("queued", "sdr_queued")))
                    .order_by(RoutedTransition.received_at, RoutedTransition.transition_id)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not queued:
                return []
            sqls = [Transition.model_validate(r.payload) for r in queued if r.status == "queued"]
            mqls = [Transition.model_validate(r.payload) for r in queued if r.status != "queued"]
            done = list((await assign(session, sqls, now)).values()) if sqls else []
            if mqls:
                sdr = await sdr_tasks(session, mqls)
                # The track lost its SDR pool (or the lead its track) meanwhile: no task.
                if gone := [t.transition_id for t in mqls if t.transition_id not in sdr]:
                    await set_routed_status(session, gone, "nurtured")
                tasks = [t for t in mqls if t.transition_id in sdr]
                if tasks:
                    done += (await assign(session, tasks, now, sdr=sdr)).values()
            return done


def _outcomes(
    new: list[Transition],
    assigned: dict[str, Assignment],
    nurtured: set[str],
    fresh: list[Leased],
) -> dict[str, Routed]:
    """What happened to each new transition, with the outbox rows leased for it."""
    by_assignment: dict[str, list[Leased]] = {}
    for leased in fresh:
        by_assignment.setdefault(leased.row.message_id.split("_", 1)[1], []).append(leased)
    results: dict[str, Routed] = {}
    for t in new:
        assignment = assigned.get(t.transition_id)
        outbox = tuple(by_assignment.get(assignment.assignment_id, ())) if assignment else ()
        if t.to_stage == Stage.SQL:
            results[t.transition_id] = (
                Routed("assigned", assignment, outbox) if assignment else Routed("queued")
            )
        elif assignment is not None:  # the SDR task on a nurtured MQL
            results[t.transition_id] = Routed("nurtured", assignment, outbox)
        elif t.transition_id in nurtured:
            results[t.transition_id] = Routed("nurtured")
        else:
            results[t.transition_id] = Routed("ignored")
    return results


def _routed_row(t: Transition) -> dict[str, Any]:
    if t.to_stage == Stage.SQL:
        status = "queued"
    elif t.to_stage == Stage.MQL:
        status = "nurtured"
    else:
        status = "ignored"
    return {
        "transition_id": t.transition_id,
        "lead_id": t.lead_id,
        "to_stage": t.to_stage.value,
        "status": status,
        "payload": t.model_dump(mode="json", by_alias=True),
    }
