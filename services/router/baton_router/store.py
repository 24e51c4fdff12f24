"""Every read and write the router makes to PostgreSQL for routing and delivery.

``route_transition`` is the exactly-once step: the consumed transition id, the
assignment and its outbox rows are written in one transaction, and the primary
key on the transition id makes a re-delivered transition a no-op. Routing decisions
take one transaction-scoped advisory lock, so two routers never both see a rep's
last free slot (capacity) or the same round-robin turn. The decision itself is the
pure ``routing.decide``; this module only loads its inputs and writes its result.
Configuration (reps, pools, rules, accounts, tracks) is in ``config_store.py``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from baton_router.availability import Calendar, parse_working_hours
from baton_router.routing import (
    Condition,
    Decision,
    Pool,
    RepState,
    Rule,
    decide,
    decide_in_pool,
    lead_facts,
)
from baton_router.strategies import Strategy
from baton_router.tables import (
    AssignmentRow,
    NurtureTrack,
    OutboxRow,
    PoolMember,
    Rep,
    RoutedTransition,
)
from baton_router.tables import Pool as PoolRow
from baton_shared.schemas import Assignment, Stage, Transition
from baton_shared.sla_policy import SlaPolicy, load_policy

ROUTING_LOCK = 0x6261746F6E  # one routing decision at a time across all routers ("baton")
# Taken by whoever leases outbox rows (the claim query, and a routing transaction that
# writes its rows already leased): the count of deliveries in flight per endpoint that
# the limit is checked against cannot change under the one checking it. Always after
# ROUTING_LOCK when both are held.
OUTBOX_LOCK = ROUTING_LOCK + 1
OPEN = "open"
SUPERSEDED = "superseded"  # an SDR task whose lead became SQL


#: Rep actions after which the lead still counts against the rep's capacity.
KEEP_OPEN = frozenset({"accepted", "qualified"})


@dataclass(frozen=True)
class Routed:
    """What happened to one transition."""

    status: str  # assigned | queued | ignored | duplicate | nurtured
    assignment: Assignment | None = None
    # Outbox rows written already leased to this router (see ``fast_lease``).
    outbox: tuple[Leased, ...] = field(default=(), compare=False, repr=False)
    # The lead's SDR task was superseded: a ``lead.taken_back`` row waits for the claim loop.
    sdr_told: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class PayloadContext:
    """What the webhook body needs beyond the assignment: where the rep acts, and the SLA
    policy the due time comes from (the SLA monitor's own, so the rep is told the
    deadline its clock will fire at)."""

    public_url: str = "http://127.0.0.1:8001"
    sla_policy: SlaPolicy = field(default_factory=load_policy)
    history_limit: int = 10


@dataclass(frozen=True)
class Escalated:
    """What a breach did: re-assigned, manager told, capped, or nothing to do."""

    status: str  # reassigned | manager_notified | capped | kept (nobody else) | not_open
    assignment: Assignment | None = None


def assignment_payload(
    assignment: Assignment,
    transition: Transition,
    history: list[dict[str, Any]] | None = None,
    context: PayloadContext | None = None,
    track: str | None = None,
) -> dict[str, Any]:
    """The webhook body: what a rep needs to act on the lead. ``lead.assigned`` for an SQL,
    ``lead.sdr_task`` for an MQL handed to an SDR (``track``: its nurture track)."""
    ctx = context or PayloadContext()
    lead_url = f"{ctx.public_url}/v1/leads/{assignment.lead_id}/activity"
    ref = {"assignment_id": assignment.assignment_id}
    sdr_task = assignment.stage == Stage.MQL
    data: dict[str, Any] = {
        **assignment.model_dump(mode="json", by_alias=True),
        "lead": lead_context(transition),
        "score": transition.score,
        "fit": transition.fit,
        "engagement": transition.engagement,
        "breakdown": {
            "fit": transition.fit,
            "engagement": transition.engagement,
            **(getattr(transition, "breakdown", None) or {}),
        },
        "top_signals": [s.model_dump(mode="json") for s in transition.top_signals],
        "reason": transition.reason,
        "trigger_event": transition.trigger_event,
        "trigger_event_id": transition.trigger_event_id,
        "from_stage": transition.from_stage.value,
        "to_stage": transition.to_stage.value,
        "rules_version": transition.rules_version,
        "history": history or [],
        "actions": {
            "url": lead_url,
            "method": "POST",
            "accept": {"kind": "accepted", **ref},
            "reject": {"kind": "rejected", "reason": "<why>", **ref},
            "contacted": {"kind": "contacted", **ref},
            "qualified": {"kind": "qualified", "bant": ["budget", "authority"], **ref},
            "won": {"kind": "won", **ref},
            "lost": {"kind": "lost", "reason": "<why>", **ref},
        },
    }
    if sdr_task:
        data["track"] = track
    return {
        "type": "lead.sdr_task" if sdr_task else "lead.assigned",
        "timestamp": assignment.assigned_at.isoformat(),
        "data": data,
    }


def lead_context(transition: Transition) -> dict[str, Any]:
    """Who the lead is: identifiers, the traits as the scorer knows them, and the canonical
    territory routing matched on (country code, region, segment, ...)."""
    facts = lead_facts(transition)
    territory = {
        name: facts.attributes[name]
        for name in (
            "country", "region", "segment", "company_size", "industry", "language",
            "email_domain",
        )
        if name in facts.attributes
    }  # fmt: skip
    return {
        "lead_id": transition.lead_id,
        "email": transition.email,
        "domain": facts.domain,
        "traits": transition.traits,
        "territory": territory,
    }


def taken_back_payload(
    assignment_id: uuid.UUID,
    lead_id: str,
    rep_id: uuid.UUID,
    reason: str,
    new_rep_id: str | None,
    now: datetime,
) -> dict:
    """``lead.taken_back``: the rep is no longer to work the lead. ``reason`` is
    ``sla_breached`` (re-assigned to ``reassigned_to``, or a manager was told) or
    ``lead_became_sql`` (an SDR task ended because the lead is an AE's now)."""
    return {
        "type": "lead.taken_back",
        "timestamp": now.isoformat(),
        "data": {
            "assignment_id": str(assignment_id),
            "lead_id": lead_id,
            "rep_id": str(rep_id),
            "reason": reason,
            "reassigned_to": new_rep_id,
        },
    }


def taken_back_row(
    assignment_id: uuid.UUID,
    lead_id: str,
    rep_id: uuid.UUID,
    reason: str,
    new_rep_id: str | None,
    now: datetime,
) -> OutboxRow:
    return OutboxRow(
        kind="webhook",
        message_id=f"msg_taken_back_{assignment_id}",
        rep_id=rep_id,
        payload=taken_back_payload(assignment_id, lead_id, rep_id, reason, new_rep_id, now),
    )


class RouterStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        assignments_topic: str,
        context: PayloadContext | None = None,
    ):
        self._sessions = sessions
        # When set, the outbox rows of a routed batch are written already leased to this
        # router for ``fast_lease`` and handed to its dispatcher straight from the
        # commit, skipping a lease query; if this router dies, the lease expires and
        # any router delivers them.
        self.fast_lease: timedelta | None = None
        # Webhook deliveries in flight per endpoint across every router sharing this
        # database (leased, not finished); None: no limit. See ``lease_due``.
        self.per_endpoint: int | None = None
        engine = sessions.kw.get("bind")
        assert isinstance(engine, AsyncEngine), "the sessionmaker must be bound to an engine"
        self._engine = engine
        self._assignments_topic = assignments_topic
        self.context = context or PayloadContext()

    # -- reps (the few calls the service and older callers use) ------------------------

    async def create_rep(
        self, name: str, email: str, webhook_url: str, secret: str, **profile: Any
    ) -> Rep:
        async with self._sessions.begin() as session:
            rep = Rep(
                id=uuid.uuid4(),
                name=name,
                email=email,
                webhook_url=webhook_url,
                webhook_secret=secret,
                status=profile.pop("status", "online"),
                timezone=profile.pop("timezone", "UTC"),
                out_of_office=profile.pop("out_of_office", []),
                weight=profile.pop("weight", 1),
                skills=profile.pop("skills", {}),
                **profile,
            )
            session.add(rep)
        return rep

    async def list_reps(self) -> list[Rep]:
        async with self._sessions() as session:
            return list(
                (
                    await session.scalars(
                        select(Rep).where(Rep.archived_at.is_(None)).order_by(Rep.created_at)
                    )
                ).all()
            )

    async def rep(self, rep_id: uuid.UUID) -> Rep | None:
        async with self._sessions() as session:
            return await session.get(Rep, rep_id)

    async def current_rep_for(self, lead_id: str) -> uuid.UUID | None:
        row = await self.current_assignment(lead_id)
        return row.rep_id if row else None

    async def current_assignment(self, lead_id: str) -> AssignmentRow | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(AssignmentRow)
                .where(AssignmentRow.lead_id == lead_id)
                .order_by(AssignmentRow.assigned_at.desc(), AssignmentRow.turn.desc())
                .limit(1)
            )

    # -- routing -----------------------------------------------------------------------

    async def route_transition(self, transition: Transition, now: datetime) -> Routed:
        return (await self.route_batch([transition], now))[0]

    async def route_batch(self, transitions: list[Transition], now: datetime) -> list[Routed]:
        """Route a batch in one transaction: record every transition id (a repeat is a
        ``duplicate``), decide each new SQL in order against the team as the previous
        decisions left it, enrol new MQLs in nurture, and write assignments and outbox
        rows. A few statements per batch, whatever its size."""
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
            sqls = [t for t in new if t.to_stage == Stage.SQL]
            mqls = [t for t in new if t.to_stage == Stage.MQL]
            fresh: list[Leased] = []
            told: set[str] = set()
            if sqls:
                told = await self._supersede_sdr_tasks(session, [t.lead_id for t in sqls], now)
            assigned = await self._assign_many(session, sqls, now, fresh=fresh) if sqls else {}
            nurtured, sdr = await self._enrol_in_nurture(session, mqls) if mqls else (set(), {})
            unenrolled = [t.transition_id for t in mqls if t.transition_id not in nurtured]
            if unenrolled:
                await self._set_status(session, unenrolled, "ignored")
            if sdr:
                tasks = [t for t in mqls if t.transition_id in sdr]
                assigned |= await self._assign_many(session, tasks, now, fresh=fresh, sdr=sdr)
                waiting = [tid for tid in sdr if tid not in assigned]
                if waiting:
                    await self._set_status(session, waiting, "sdr_queued")
        by_assignment: dict[str, list[Leased]] = {}
        for leased in fresh:
            by_assignment.setdefault(leased.row.message_id.split("_", 1)[1], []).append(leased)
        results: dict[str, Routed] = {}
        for t in new:
            if t.transition_id in assigned and t.to_stage == Stage.SQL:
                assignment = assigned[t.transition_id]
                outbox = tuple(by_assignment.get(assignment.assignment_id, ()))
                results[t.transition_id] = Routed("assigned", assignment, outbox)
            elif t.to_stage == Stage.SQL:
                results[t.transition_id] = Routed("queued")
            elif t.transition_id in assigned:  # the SDR task on a nurtured MQL
                assignment = assigned[t.transition_id]
                outbox = tuple(by_assignment.get(assignment.assignment_id, ()))
                results[t.transition_id] = Routed("nurtured", assignment, outbox)
            elif t.transition_id in nurtured:
                results[t.transition_id] = Routed("nurtured")
            else:
                results[t.transition_id] = Routed("ignored")
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
            done = list((await self._assign_many(session, sqls, now)).values()) if sqls else []
            if mqls:
                sdr = await self._sdr_pools(session, mqls)
                # The track lost its SDR pool (or the lead its track) meanwhile: no task.
                if gone := [t.transition_id for t in mqls if t.transition_id not in sdr]:
                    await self._set_status(session, gone, "nurtured")
                tasks = [t for t in mqls if t.transition_id in sdr]
                if tasks:
                    done += (await self._assign_many(session, tasks, now, sdr=sdr)).values()
            return done

    async def _supersede_sdr_tasks(
        self, session: AsyncSession, lead_ids: list[str], now: datetime
    ) -> set[str]:
        """A lead that became SQL is an AE's now: its SDR task is over. An open task is
        closed (``superseded``; the SDR's capacity is freed, and the SDR gets a
        ``lead.taken_back`` webhook so they stop working it) and one still waiting for an
        SDR is not handed out any more. Returns the leads whose SDR was told."""
        closed = (
            await session.execute(
                update(AssignmentRow)
                .where(
                    AssignmentRow.lead_id.in_(lead_ids),
                    AssignmentRow.stage == Stage.MQL.value,
                    AssignmentRow.status == OPEN,
                )
                .values(status=SUPERSEDED, closed_at=now)
                .returning(AssignmentRow.id, AssignmentRow.lead_id, AssignmentRow.rep_id)
            )
        ).all()
        for assignment_id, lead_id, rep_id in closed:
            await _one_less_open(session, rep_id)
            session.add(
                taken_back_row(assignment_id, lead_id, rep_id, "lead_became_sql", None, now)
            )
        await session.execute(
            update(RoutedTransition)
            .where(
                RoutedTransition.lead_id.in_(lead_ids),
                RoutedTransition.status == "sdr_queued",
            )
            .values(status=SUPERSEDED)
        )
        return {lead_id for _, lead_id, _ in closed}

    async def _set_status(
        self, session: AsyncSession, transition_ids: list[str], status: str
    ) -> None:
        await session.execute(
            update(RoutedTransition)
            .where(RoutedTransition.transition_id.in_(transition_ids))
            .values(status=status)
        )

    async def _load_inputs(
        self,
        session: AsyncSession,
        outbox_lock: bool = False,
        turns: int = 0,
        domains: set[str] | None = None,
    ) -> _Inputs:
        """Take the routing lock (and ``OUTBOX_LOCK`` with it, in the same round trip, when
        the transaction will lease outbox rows), then read the team as it is now — reps,
        pools, members, enabled rules, the owners of ``domains`` — and draw ``turns``
        round-robin turn numbers, all in one statement (one round trip, not six: the
        routing transaction's cost is its round trips)."""
        if outbox_lock:
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:k), pg_advisory_xact_lock(:o)"),
                {"k": ROUTING_LOCK, "o": OUTBOX_LOCK},
            )
        else:
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ROUTING_LOCK})
        row = (
            await session.execute(TEAM_QUERY, {"n": turns, "domains": sorted(domains or ())})
        ).one()
        reps, pools, members, rules, accounts, drawn = (
            orjson.loads(v) if isinstance(v, str | bytes) else v for v in row
        )
        return _Inputs(
            reps={uuid.UUID(r["id"]): rep_state_of(r) for r in reps},
            targets={
                uuid.UUID(r["id"]): None if r["disabled"] else (r["url"], r["secret"]) for r in reps
            },
            pools=[
                Pool(
                    pool_id=uuid.UUID(p["id"]),
                    name=p["name"],
                    strategy=Strategy(p["strategy"]),
                    express=p["express"],
                    members=tuple(
                        uuid.UUID(m["rep_id"]) for m in members if m["pool_id"] == p["id"]
                    ),
                    current={
                        uuid.UUID(m["rep_id"]): float(m["wrr_current"])
                        for m in members
                        if m["pool_id"] == p["id"]
                    },
                )
                for p in pools
            ],
            rules=[
                Rule(
                    uuid.UUID(r["id"]),
                    uuid.UUID(r["pool_id"]),
                    tuple(Condition(**c) for c in r["conditions"]),
                )
                for r in rules
            ],
            accounts={domain: uuid.UUID(rep_id) for domain, rep_id in (accounts or {}).items()},
            turns=sorted(drawn or []),
        )

    async def _assign_many(
        self,
        session: AsyncSession,
        transitions: list[Transition],
        now: datetime,
        exclude: frozenset[uuid.UUID] = frozenset(),
        previous: AssignmentRow | None = None,
        fresh: list[Leased] | None = None,
        sdr: dict[str, tuple[uuid.UUID, str | None]] | None = None,
    ) -> dict[str, Assignment]:
        """Decide ``transitions`` in order (each decision sees the ones before it) and
        write the assignments; the ones nobody can take are left as they are. With
        ``sdr`` (transition id → SDR pool and nurture track), they are MQLs and each
        becomes an SDR task in its pool."""
        facts = [lead_facts(t) for t in transitions]
        inputs = await self._load_inputs(
            session,
            outbox_lock=self._leases_in_routing(fresh),
            turns=len(transitions),
            domains={f.domain for f in facts if f.domain},
        )
        accounts, turns = inputs.accounts, inputs.turns
        decided: list[tuple[Transition, Decision, int]] = []
        for transition, lead, turn in zip(transitions, facts, turns, strict=True):
            if sdr is not None:
                pool = next(
                    (p for p in inputs.pools if p.pool_id == sdr[transition.transition_id][0]), None
                )
                decision = (
                    None
                    if pool is None
                    else decide_in_pool(lead, inputs.reps, pool, now, exclude, "sdr task")
                )
            else:
                decision = decide(
                    lead,
                    list(inputs.reps.values()),
                    inputs.pools,
                    inputs.rules,
                    accounts,
                    now,
                    exclude,
                )
            if decision is not None:
                inputs.record(decision, turn)
                decided.append((transition, decision, turn))
        if not decided:
            return {}
        return await self._write_assignments(
            session, decided, now, previous, inputs, fresh, sdr or {}
        )

    async def _write_assignments(
        self,
        session: AsyncSession,
        decided: list[tuple[Transition, Decision, int]],
        now: datetime,
        previous: AssignmentRow | None,
        inputs: _Inputs,
        fresh: list[Leased] | None,
        sdr: dict[str, tuple[uuid.UUID, str | None]],
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
            history = histories.get(transition.lead_id, [])
            outbox_rows += [
                _outbox(
                    kind="webhook",
                    message_id=f"msg_{assignment.assignment_id}",
                    rep_id=decision.rep_id,
                    payload=assignment_payload(
                        assignment,
                        transition,
                        history,
                        self.context,
                        track=sdr[transition.transition_id][1] if stage == Stage.MQL else None,
                    ),
                ),
                _outbox(
                    kind="kafka",
                    message_id=f"kafka_{assignment.assignment_id}",
                    topic=self._assignments_topic,
                    key=transition.lead_id,
                    payload=assignment.model_dump(mode="json", by_alias=True),
                ),
            ]
        await session.execute(insert(AssignmentRow.__table__), assignment_rows)
        outbox = OutboxRow.__table__
        if self._leases_in_routing(fresh):
            room = await self._endpoint_room(session, now, locked=True)
            leased = []
            for row in outbox_rows:
                key = endpoint_key(row["kind"], row["rep_id"], row["track_id"])
                if room is None or key == KAFKA_ENDPOINT or room[key] > 0:
                    row["lease_until"] = now + self.fast_lease
                    leased.append(row)
                    if room is not None:
                        room[key] -= 1
                else:
                    row["lease_until"] = None  # endpoint at its limit: the claim loop's
            # Only the ids come back: the rows' payloads are here already.
            ids = (
                await session.execute(
                    insert(outbox).returning(outbox.c.id, outbox.c.message_id), outbox_rows
                )
            ).all()
            by_message = dict((message_id, row_id) for row_id, message_id in ids)
            fresh.extend(
                Leased(
                    _fresh_row(row, by_message[row["message_id"]]),
                    inputs.targets.get(row["rep_id"]),
                )
                for row in leased
            )
        else:
            await session.execute(insert(outbox), outbox_rows)
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
        limit = self.context.history_limit
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
        seen_before = [
            lead
            for lead, stage, _, transition_id in transitions
            if stage == Stage.SQL.value and transition_id not in current
        ]
        assignments = (
            (
                await session.execute(
                    select(
                        AssignmentRow.lead_id,
                        AssignmentRow.assigned_at,
                        AssignmentRow.rep_id,
                        AssignmentRow.status,
                    )
                    .where(AssignmentRow.lead_id.in_(set(seen_before)))
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
            del items[limit:]
        return out

    # -- MQL nurture -------------------------------------------------------------------

    async def _tracks(self, session: AsyncSession) -> list[NurtureTrack]:
        return list(
            (
                await session.scalars(
                    select(NurtureTrack).order_by(NurtureTrack.position, NurtureTrack.created_at)
                )
            ).all()
        )

    async def _enrol_in_nurture(
        self, session: AsyncSession, transitions: list[Transition]
    ) -> tuple[set[str], dict[str, tuple[uuid.UUID, str | None]]]:
        """A ``lead.nurture`` webhook to the first track whose conditions match. Returns
        the enrolled transition ids, and those whose track asks for an SDR task (with the
        track's SDR pool and name)."""
        tracks = await self._tracks(session)
        enrolled: set[str] = set()
        sdr: dict[str, tuple[uuid.UUID, str | None]] = {}
        for transition in transitions:
            track = track_for(tracks, transition)
            if track is None:
                continue
            session.add(
                OutboxRow(
                    kind="webhook",
                    message_id=f"msg_nurture_{transition.transition_id}"[:80],
                    track_id=track.id,
                    target_url=track.webhook_url,
                    payload=nurture_payload(transition, track.name),
                )
            )
            enrolled.add(transition.transition_id)
            if track.sdr_pool_id is not None:
                sdr[transition.transition_id] = (track.sdr_pool_id, track.name)
        return enrolled, sdr

    async def _sdr_pools(
        self, session: AsyncSession, transitions: list[Transition]
    ) -> dict[str, tuple[uuid.UUID, str | None]]:
        tracks = await self._tracks(session)
        out: dict[str, tuple[uuid.UUID, str | None]] = {}
        for transition in transitions:
            track = track_for(tracks, transition)
            if track is not None and track.sdr_pool_id is not None:
                out[transition.transition_id] = (track.sdr_pool_id, track.name)
        return out

    # -- rep actions and escalation ----------------------------------------------------

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
            await _one_less_open(session, row.rep_id)
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
            pool = await session.get(PoolRow, previous.pool_id) if previous.pool_id else None
            cap = pool.max_reassignments if pool else max_reassignments
            if previous.reassignments >= cap:
                return Escalated("capped")
            first = await session.get(RoutedTransition, previous.transition_id)
            if first is None:
                return Escalated("not_open")
            transition = Transition.model_validate(first.payload)
            if pool is not None and pool.escalation == "manager" and pool.manager_rep_id:
                previous.status = "escalated"
                await _one_less_open(session, previous.rep_id)
                session.add(
                    OutboxRow(
                        kind="webhook",
                        message_id=f"msg_escalated_{previous.id}",
                        rep_id=pool.manager_rep_id,
                        payload={
                            "type": "lead.escalated",
                            "timestamp": now.isoformat(),
                            "data": {
                                "assignment_id": str(previous.id),
                                "lead_id": previous.lead_id,
                                "rep_id": str(previous.rep_id),
                                "pool": pool.name,
                                "reason": "sla_breached",
                            },
                        },
                    )
                )
                return Escalated("manager_notified")
            sdr = None
            if previous.stage == Stage.MQL.value and previous.pool_id is not None:
                # An SDR task: the next SDR of the same pool takes it over.
                track = track_for(await self._tracks(session), transition)
                sdr = {transition.transition_id: (previous.pool_id, track.name if track else None)}
            assigned = await self._assign_many(
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
            await _one_less_open(session, previous.rep_id)
            session.add(
                taken_back_row(
                    previous.id,
                    previous.lead_id,
                    previous.rep_id,
                    "sla_breached",
                    assignment.rep_id,
                    now,
                )
            )
            return Escalated("reassigned", assignment)

    async def rep_loads(self) -> dict[uuid.UUID, int]:
        async with self._sessions() as session:
            return dict((await session.execute(select(Rep.id, Rep.open_leads))).all())

    # -- the outbox --------------------------------------------------------------------

    async def lease_due(
        self,
        now: datetime,
        lease: timedelta,
        limit: int = 50,
        room: Callable[[str], int] | None = None,
    ) -> list[Leased]:
        return (await self.claim_due(now, lease, limit, room)).rows

    async def claim_due(
        self,
        now: datetime,
        lease: timedelta,
        limit: int = 50,
        room: Callable[[str], int] | None = None,
    ) -> Claimed:
        """Claim due outbox rows for ``lease``; another dispatcher skips them meanwhile,
        and takes them over if this one dies before finishing. At most ``room(endpoint)``
        rows per endpoint (see :func:`endpoint_key`) are claimed, and with
        ``per_endpoint`` set never more than that many in flight per endpoint across all
        routers; the rest stay free (``Claimed.waiting``: some were due but left).
        Each comes with its webhook target (URL and secret; None when disabled/deleted)."""
        outbox = OutboxRow.__table__
        async with self._engine.begin() as conn:
            limits = await self._endpoint_room(conn, now)
            due = (
                await conn.execute(
                    select(outbox.c.id, outbox.c.kind, outbox.c.rep_id, outbox.c.track_id)
                    .where(
                        outbox.c.status == "pending",
                        outbox.c.next_attempt_at <= now,
                        (outbox.c.lease_until.is_(None)) | (outbox.c.lease_until < now),
                    )
                    .order_by(outbox.c.id)
                    .limit(max(limit * 4, 100))
                    .with_for_update(skip_locked=True)
                )
            ).all()
            taken: Counter[str] = Counter()
            chosen = []
            waiting = False
            for row_id, kind, rep_id, track_id in due:
                key = endpoint_key(kind, rep_id, track_id)
                if (room is not None and taken[key] >= room(key)) or (
                    # every router together has the endpoint's limit in flight
                    limits is not None and key != KAFKA_ENDPOINT and taken[key] >= limits[key]
                ):
                    waiting = True
                    continue
                if len(chosen) >= limit:
                    waiting = True
                    break
                taken[key] += 1
                chosen.append(row_id)
            if not chosen:
                return Claimed([], waiting)
            rows = (
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(chosen))
                    .values(lease_until=now + lease)
                    .returning(*outbox.c)
                )
            ).all()
            targets = await self._targets(
                conn,
                {r.rep_id for r in rows if r.kind == "webhook" and r.rep_id is not None},
                {r.track_id for r in rows if r.kind == "webhook" and r.track_id is not None},
            )
        leased = [
            Leased(row, targets.get(row.rep_id or row.track_id))
            for row in sorted(rows, key=lambda r: r.id)
        ]
        return Claimed(leased, waiting)

    def _leases_in_routing(self, fresh: list[Leased] | None) -> bool:
        return fresh is not None and self.fast_lease is not None

    async def _endpoint_room(
        self, conn: AsyncConnection | AsyncSession, now: datetime, locked: bool = False
    ) -> Counter[str] | None:
        """How many more webhooks each endpoint may have in flight, counted over every
        router sharing this database: ``per_endpoint`` minus its rows leased and not yet
        finished. Takes ``OUTBOX_LOCK`` (to commit; ``locked``: the caller has) so two
        routers never both see the last free slot. None when there is no limit."""
        if self.per_endpoint is None:
            return None
        if not locked:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": OUTBOX_LOCK})
        in_flight = (
            await conn.execute(
                text(
                    "SELECT rep_id, track_id, count(*) FROM router.outbox "
                    "WHERE status = 'pending' AND kind = 'webhook' AND lease_until > :now "
                    "GROUP BY rep_id, track_id"
                ),
                {"now": now},
            )
        ).all()
        room: Counter[str] = _Room(self.per_endpoint)
        for rep_id, track_id, n in in_flight:
            room[endpoint_key("webhook", rep_id, track_id)] -= n
        return room

    async def _targets(
        self, conn: AsyncConnection, rep_ids: set[uuid.UUID], track_ids: set[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[str, str] | None]:
        out: dict[uuid.UUID, tuple[str, str] | None] = {}
        if rep_ids:
            for rep_id, url, secret, disabled in (
                await conn.execute(
                    select(
                        Rep.id, Rep.webhook_url, Rep.webhook_secret, Rep.webhook_disabled_at
                    ).where(Rep.id.in_(rep_ids))
                )
            ).all():
                out[rep_id] = None if disabled else (url, secret)
        if track_ids:
            for track_id, url, secret in (
                await conn.execute(
                    select(
                        NurtureTrack.id, NurtureTrack.webhook_url, NurtureTrack.webhook_secret
                    ).where(NurtureTrack.id.in_(track_ids))
                )
            ).all():
                out[track_id] = (url, secret)
        return out

    async def track(self, track_id: uuid.UUID) -> NurtureTrack | None:
        async with self._sessions() as session:
            return await session.get(NurtureTrack, track_id)

    async def release_many(self, row_ids: list[int]) -> None:
        """Give leased rows back untried, for any router's next lease."""
        if not row_ids:
            return
        outbox = OutboxRow.__table__
        async with self._engine.begin() as conn:
            await conn.execute(
                update(outbox).where(outbox.c.id.in_(row_ids)).values(lease_until=None)
            )

    async def mark_delivered(self, row_id: int, now: datetime) -> None:
        await self.mark_delivered_many([row_id], now)

    async def mark_delivered_many(self, row_ids: list[int], now: datetime) -> None:
        if not row_ids:
            return
        outbox = OutboxRow.__table__
        async with self._engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(row_ids))
                .values(
                    status="delivered",
                    delivered_at=now,
                    lease_until=None,
                    attempts=outbox.c.attempts + 1,
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

    async def dead_letters(self, limit: int = 100) -> list[OutboxRow]:
        async with self._sessions() as session:
            return list(
                (
                    await session.scalars(
                        select(OutboxRow)
                        .where(OutboxRow.status == "dead")
                        .order_by(OutboxRow.id.desc())
                        .limit(limit)
                    )
                ).all()
            )

    async def replay(self, row_id: int, now: datetime) -> OutboxRow | None:
        """Put a dead message back in line (attempts start again; a disabled rep endpoint
        is re-enabled, since the operator asked for delivery)."""
        async with self._sessions.begin() as session:
            row = await session.get(OutboxRow, row_id, with_for_update=True)
            if row is None or row.status != "dead":
                return None
            row.status, row.attempts, row.next_attempt_at = "pending", 0, now
            row.lease_until = None
            if row.rep_id is not None:
                await session.execute(
                    update(Rep).where(Rep.id == row.rep_id).values(webhook_disabled_at=None)
                )
            return row


async def _one_less_open(session: AsyncSession, rep_id: uuid.UUID) -> None:
    await session.execute(update(Rep).where(Rep.id == rep_id).values(open_leads=Rep.open_leads - 1))


@dataclass(frozen=True)
class Leased:
    """An outbox row this router now owns for a while, and where a webhook row goes."""

    row: Any  # the outbox row (a Core Row with OutboxRow's column names)
    target: tuple[str, str] | None  # webhook URL and signing secret


KAFKA_ENDPOINT = "kafka"


@dataclass(frozen=True)
class Claimed:
    """Rows a claim leased, and whether due rows were left (limits, batch size)."""

    rows: list[Leased]
    waiting: bool = False


class _Room(Counter[str]):
    """Free delivery slots per endpoint; an endpoint not mentioned has all of them."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def __missing__(self, key: str) -> int:
        return self.limit


def _fresh_row(values: dict[str, Any], row_id: int) -> SimpleNamespace:
    """An outbox row just inserted, as the dispatcher reads it (the columns it uses)."""
    return SimpleNamespace(attempts=0, **values, id=row_id)


def endpoint_key(kind: str, rep_id: uuid.UUID | None, track_id: uuid.UUID | None) -> str:
    """Where an outbox row goes, for concurrency limits and metrics."""
    if kind != "webhook":
        return KAFKA_ENDPOINT
    if rep_id is not None:
        return f"rep:{rep_id}"
    return f"track:{track_id}"


@dataclass
class _Inputs:
    """The team as routing sees it, updated in memory as a batch is decided."""

    reps: dict[uuid.UUID, RepState]
    pools: list[Pool]
    rules: list[Rule] = field(default_factory=list)
    targets: dict[uuid.UUID, tuple[str, str] | None] = field(default_factory=dict)
    accounts: dict[str, uuid.UUID] = field(default_factory=dict)  # domain → owning rep
    turns: list[int] = field(default_factory=list)  # fresh round-robin turn numbers

    def record(self, decision: Decision, turn: int) -> None:
        rep = self.reps[decision.rep_id]
        self.reps[decision.rep_id] = replace(rep, open_leads=rep.open_leads + 1, last_turn=turn)
        if decision.pool_id is not None:
            self.pools = [
                replace(p, current={**p.current, **decision.pool_current})
                if p.pool_id == decision.pool_id
                else p
                for p in self.pools
            ]


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


def _outbox(**fields: Any) -> dict[str, Any]:
    defaults = {"rep_id": None, "topic": None, "key": None, "track_id": None, "target_url": None}
    return defaults | fields


def track_for(tracks: list[NurtureTrack], transition: Transition) -> NurtureTrack | None:
    """The first track (in position order) whose conditions all match the lead."""
    lead = lead_facts(transition)
    return next(
        (t for t in tracks if all(Condition(**c).matches(lead) for c in t.conditions)), None
    )


def nurture_payload(transition: Transition, track: str) -> dict[str, Any]:
    return {
        "type": "lead.nurture",
        "timestamp": transition.occurred_at.isoformat(),
        "data": {
            "lead_id": transition.lead_id,
            "transition_id": transition.transition_id,
            "track": track,
            "score": transition.score,
            "fit": transition.fit,
            "engagement": transition.engagement,
            "reason": transition.reason,
            "trigger_event": transition.trigger_event,
            "qualified_at": transition.occurred_at.isoformat(),
        },
    }


TEAM_QUERY = text(
    """
    SELECT
      (SELECT coalesce(json_agg(json_build_object(
         'id', id, 'status', status, 'timezone', timezone, 'working_hours', working_hours,
         'out_of_office', out_of_office, 'capacity', capacity, 'weight', weight,
         'skills', skills, 'last_turn', last_turn, 'open_leads', open_leads,
         'disabled', webhook_disabled_at IS NOT NULL, 'url', webhook_url,
         'secret', webhook_secret)), '[]')
       FROM router.reps WHERE archived_at IS NULL),
      (SELECT coalesce(json_agg(json_build_object(
         'id', id, 'name', name, 'strategy', strategy, 'express', express)), '[]')
       FROM router.pools),
      (SELECT coalesce(json_agg(json_build_object(
         'pool_id', pool_id, 'rep_id', rep_id, 'wrr_current', wrr_current)), '[]')
       FROM router.pool_members),
      (SELECT coalesce(json_agg(json_build_object(
         'id', id, 'pool_id', pool_id, 'conditions', conditions)
         ORDER BY position, created_at), '[]')
       FROM router.routing_rules WHERE enabled),
      (SELECT json_object_agg(domain, rep_id) FROM router.accounts
       WHERE domain = ANY(CAST(:domains AS text[]))),
      (SELECT array_agg(nextval('router.assignment_turn')) FROM generate_series(1, :n))
    """
)


def rep_state_of(row: dict[str, Any]) -> RepState:
    """A rep as the team query returns it (JSON), as routing sees it."""
    return RepState(
        rep_id=uuid.UUID(row["id"]),
        status=row["status"],
        calendar=Calendar(
            timezone=row["timezone"] or "UTC",
            hours=parse_working_hours(row["working_hours"]),
            out_of_office=tuple(
                (datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"]))
                for r in row["out_of_office"] or []
            ),
        ),
        capacity=row["capacity"],
        weight=row["weight"],
        skills=row["skills"] or {},
        open_leads=row["open_leads"],
        last_turn=row["last_turn"],
        webhook_disabled=row["disabled"],
    )
