"""Deciding and writing assignments inside the caller's routing transaction.

:meth:`Assigner.assign` loads the team under the routing lock (``team.TeamCache``),
decides each lead in order with the pure ``routing.decide`` (each decision sees the ones
before it), then writes the assignments, their outbox rows (the rep's webhook, a Slack
message when the rep or else its pool has a Slack webhook, and the
``leads.assignments`` record), the routed transitions' status, the reps' turns and open
counts, and the pools' weighted-round-robin state, in a few statements. Routing a batch,
draining the queue and re-assigning after an SLA breach all go through it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from baton_router.payloads import PayloadContext, assignment_payload
from baton_router.routing import Decision, decide, decide_in_pool, lead_facts
from baton_router.slack import assignment_message
from baton_router.store.outbox import Leased, insert_rows, outbox_values
from baton_router.store.team import Team, TeamCache
from baton_router.tables import AssignmentRow, PoolMember, Rep, RoutedTransition
from baton_shared.schemas import Assignment, Stage, Transition

OPEN = "open"

#: transition id → the SDR pool and nurture track name of an MQL that becomes an SDR task
SdrTasks = dict[str, tuple[uuid.UUID, str | None]]


async def one_less_open(session: AsyncSession, rep_id: uuid.UUID) -> None:
    """The rep's open-lead count (what capacity is checked against) drops by one."""
    await session.execute(update(Rep).where(Rep.id == rep_id).values(open_leads=Rep.open_leads - 1))


async def set_routed_status(session: AsyncSession, transition_ids: list[str], status: str) -> None:
    """What happened to these routed transitions (``queued``, ``nurtured``, ...)."""
    await session.execute(
        update(RoutedTransition)
        .where(RoutedTransition.transition_id.in_(transition_ids))
        .values(status=status)
    )


@dataclass(frozen=True)
class Assigner:
    """How assignments are written: the topic their records go to, the webhook context,
    and whether their outbox rows are leased to this router in the same transaction
    (``fast_lease``; at most ``per_endpoint`` in flight per endpoint)."""

    assignments_topic: str
    context: PayloadContext
    fast_lease: timedelta | None = None
    per_endpoint: int | None = None
    team: TeamCache = field(default_factory=TeamCache, compare=False, repr=False)

    async def assign(
        self,
        session: AsyncSession,
        transitions: list[Transition],
        now: datetime,
        exclude: frozenset[uuid.UUID] = frozenset(),
        previous: AssignmentRow | None = None,
        fresh: list[Leased] | None = None,
        sdr: SdrTasks | None = None,
    ) -> dict[str, Assignment]:
        """Decide ``transitions`` in order and write the assignments; the ones nobody can
        take are left as they are. With ``sdr`` they are MQLs and each becomes an SDR
        task in its pool. ``fresh`` collects the outbox rows leased to this router."""
        facts = [lead_facts(t) for t in transitions]
        team = await self.team.load(
            session,
            facts,
            None if sdr is None else {sdr[t.transition_id][0] for t in transitions},
            outbox_lock=self._leases(fresh),
            turns=len(transitions),
        )
        decided: list[tuple[Transition, Decision, int]] = []
        rules = team.first_rules or [None] * len(transitions)
        for transition, lead, turn, rule in zip(transitions, facts, team.turns, rules, strict=True):
            if sdr is not None:
                pool_id = sdr[transition.transition_id][0]
                pool = next((p for p in team.pools if p.pool_id == pool_id), None)
                decision = (
                    None
                    if pool is None
                    else decide_in_pool(lead, team.reps, pool, now, exclude, "sdr task")
                )
            else:
                # The lead's first matching rule was found when the team was loaded:
                # deciding with that one rule decides as with all of them.
                decision = decide(
                    lead,
                    team.reps,
                    team.pools,
                    [rule] if rule else [],
                    team.accounts,
                    now,
                    exclude,
                )
            if decision is not None:
                team.record(decision, turn)
                decided.append((transition, decision, turn))
        if not decided:
            return {}
        return await self._write(session, decided, now, previous, team, fresh, sdr or {})

    def _leases(self, fresh: list[Leased] | None) -> bool:
        return fresh is not None and self.fast_lease is not None

    async def _write(
        self,
        session: AsyncSession,
        decided: list[tuple[Transition, Decision, int]],
        now: datetime,
        previous: AssignmentRow | None,
        team: Team,
        fresh: list[Leased] | None,
        sdr: SdrTasks,
    ) -> dict[str, Assignment]:
        histories = await self._histories(
            session, [t.lead_id for t, _, _ in decided], {t.transition_id for t, _, _ in decided}
        )
        reassignments = previous.reassignments + 1 if previous else 0
        done: dict[str, Assignment] = {}
        assignment_rows: list[dict[str, Any]] = []
        outbox_rows: list[dict[str, Any]] = []
        rep_turns: dict[uuid.UUID, int] = {}
        rep_new: Counter[uuid.UUID] = Counter()
        for transition, decision, turn in decided:
            stage = Stage.MQL if transition.transition_id in sdr else Stage.SQL
            # The first-touch deadline the SLA monitor's clock gets: the pool is its team
            # (team windows, business-hours calendar).
            due = self.context.sla_policy.plan(
                now, stage.value, transition.express, decision.pool_name
            ).deadline_at
            assignment = Assignment(
                assignment_id=str(uuid.uuid4()),
                transition_id=transition.transition_id,
                lead_id=transition.lead_id,
                rep_id=str(decision.rep_id),
                strategy=decision.strategy,
                express=transition.express,
                qualified_at=transition.occurred_at,
                assigned_at=now,
                pool=decision.pool_name,
                reason=decision.reason,
                sla_due_at=due,
                reassignments=reassignments,
                previous_rep_id=str(previous.rep_id) if previous else None,
                stage=stage,
            )
            done[transition.transition_id] = assignment
            rep_turns[decision.rep_id] = turn
            rep_new[decision.rep_id] += 1
            assignment_rows.append(
                {
                    "id": uuid.UUID(assignment.assignment_id),
                    # Unique among first assignments only (partial index): a
                    # re-assignment keeps the transition it stems from.
                    "transition_id": transition.transition_id,
                    "lead_id": transition.lead_id,
                    "rep_id": decision.rep_id,
                    "strategy": decision.strategy,
                    "express": transition.express,
                    "qualified_at": transition.occurred_at,
                    "assigned_at": now,
                    "status": OPEN,
                    "pool_id": decision.pool_id,
                    "turn": turn,
                    "reassignments": reassignments,
                    "previous_assignment_id": previous.id if previous else None,
                    "sla_due_at": assignment.sla_due_at,
                    "stage": stage.value,
                }
            )
            track = sdr[transition.transition_id][1] if stage == Stage.MQL else None
            payload = assignment_payload(
                assignment, transition, histories.get(transition.lead_id, []), self.context, track
            )
            slack_url = team.slack_urls.get(decision.rep_id) or (
                team.slack_urls.get(decision.pool_id) if decision.pool_id else None
            )
            if slack_url:
                outbox_rows.append(
                    outbox_values(
                        kind="slack",
                        message_id=f"slack_{assignment.assignment_id}",
                        rep_id=decision.rep_id,
                        target_url=slack_url,
                        payload=assignment_message(payload),
                    )
                )
            outbox_rows += [
                outbox_values(
                    kind="webhook",
                    message_id=f"msg_{assignment.assignment_id}",
                    rep_id=decision.rep_id,
                    payload=payload,
                ),
                outbox_values(
                    kind="kafka",
                    message_id=f"kafka_{assignment.assignment_id}",
                    topic=self.assignments_topic,
                    key=transition.lead_id,
                    payload=assignment.model_dump(mode="json", by_alias=True),
                ),
            ]
        await session.execute(insert(AssignmentRow.__table__), assignment_rows)
        lease = self.fast_lease if self._leases(fresh) else None
        leased = await insert_rows(
            session, outbox_rows, now, lease, self.per_endpoint, team.targets
        )
        if fresh is not None:
            fresh.extend(leased)
        # The routed transitions' new status rides along in the same statement (one round
        # trip less per batch); a re-assignment keeps the status it has.
        statuses = (
            {tid: ("nurtured" if tid in sdr else "assigned") for tid in done}
            if previous is None
            else {}
        )
        await session.execute(
            text(
                "WITH routed AS (UPDATE router.routed_transitions AS t SET status = s.status "
                "FROM unnest(CAST(:tids AS text[]), CAST(:statuses AS text[])) "
                "AS s(tid, status) WHERE t.transition_id = s.tid) "
                "UPDATE router.reps AS r SET last_turn = v.turn, last_assigned_at = :now, "
                "open_leads = r.open_leads + v.n "
                "FROM unnest(CAST(:ids AS uuid[]), CAST(:turns AS bigint[]), "
                "CAST(:counts AS integer[])) AS v(id, turn, n) WHERE r.id = v.id"
            ),
            {
                "now": now,
                "ids": list(rep_turns),
                "turns": list(rep_turns.values()),
                "counts": [rep_new[r] for r in rep_turns],
                "tids": list(statuses),
                "statuses": list(statuses.values()),
            },
        )
        pool_state = {
            (d.pool_id, rep_id): current
            for _, d, _ in decided
            if d.pool_id is not None
            for rep_id, current in d.pool_current.items()
        }
        if pool_state:
            await session.execute(
                update(PoolMember),
                [
                    {"pool_id": pool_id, "rep_id": rep_id, "wrr_current": current}
                    for (pool_id, rep_id), current in pool_state.items()
                ],
            )
        return done

    async def _histories(
        self, session: AsyncSession, lead_ids: list[str], current: set[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Each lead's recent stage changes and assignments, newest first."""
        transitions = (
            await session.execute(
                select(
                    RoutedTransition.lead_id,
                    RoutedTransition.to_stage,
                    # The few fields history shows, not the whole payload (traits and all).
                    func.jsonb_build_object(
                        "occurred_at",
                        RoutedTransition.payload["occurred_at"],
                        "score",
                        RoutedTransition.payload["score"],
                        "reason",
                        RoutedTransition.payload["reason"],
                        "trigger_event",
                        RoutedTransition.payload["trigger_event"],
                    ),
                    RoutedTransition.transition_id,
                )
                .where(RoutedTransition.lead_id.in_(lead_ids))
                .order_by(RoutedTransition.received_at.desc())
            )
        ).all()
        # Only a lead with an earlier SQL can have earlier assignments.
        seen_before = {
            lead
            for lead, stage, _, transition_id in transitions
            if stage == Stage.SQL.value and transition_id not in current
        }
        assignments = (
            (
                await session.execute(
                    select(
                        AssignmentRow.lead_id,
                        AssignmentRow.assigned_at,
                        AssignmentRow.rep_id,
                        AssignmentRow.status,
                    )
                    .where(AssignmentRow.lead_id.in_(seen_before))
                    .order_by(AssignmentRow.assigned_at.desc())
                )
            ).all()
            if seen_before
            else []
        )
        out: dict[str, list[dict[str, Any]]] = {lead: [] for lead in lead_ids}
        for lead_id, to_stage, payload, _ in transitions:
            out[lead_id].append(
                {
                    "type": "transition",
                    "at": payload.get("occurred_at"),
                    "to_stage": to_stage,
                    "score": payload.get("score"),
                    "reason": payload.get("reason"),
                    "trigger_event": payload.get("trigger_event"),
                }
            )
        for lead_id, assigned_at, rep_id, status in assignments:
            out[lead_id].append(
                {
                    "type": "assignment",
                    "at": assigned_at.isoformat(),
                    "rep_id": str(rep_id),
                    "status": status,
                }
            )
        for items in out.values():
            items.sort(key=lambda i: i["at"] or "", reverse=True)
            del items[self.context.history_limit :]
        return out
