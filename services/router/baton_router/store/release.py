"""A lead the scorer recycled or disqualified leaves its rep's hands, inside the caller's
routing transaction (so it happens once per transition id).

:func:`release_leads` closes each such lead's open assignments (status ``recycled`` /
``disqualified``; the rep's capacity is freed), tells each rep with a signed
``lead.recycled`` / ``lead.disqualified`` webhook and, when the rep (or else the pool)
has Slack, a Block Kit message, takes the lead's waiting entries out of the queue, and
enrols a recycled lead in its nurture track (``nurture.enrol_in_nurture``, without an
SDR task: the lead just left a rep). Only what the lead qualified for by the time it
left is released: a later qualification stands.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from baton_router.notices import RELEASE_TYPES, released_payload
from baton_router.store.assigning import OPEN, one_less_open, set_routed_status
from baton_router.store.nudges import slack_notice
from baton_router.store.nurture import enrol_in_nurture, track_for, tracks
from baton_router.store.outbox import webhook_row
from baton_router.tables import AssignmentRow, OutboxRow, Pool, Rep, RoutedTransition
from baton_shared.schemas import Stage, Transition

#: The stages that take a lead out of the funnel.
RELEASING = frozenset(RELEASE_TYPES)
WAITING = ("queued", "sdr_queued")


async def release_leads(
    session: AsyncSession, transitions: Sequence[Transition], now: datetime
) -> dict[str, str]:
    """Release the leads ``transitions`` (new, all recycled or disqualified) take out of
    the funnel. Returns each transition's routed status: ``nurtured`` (a recycled lead
    enrolled in a track), ``released`` (an assignment or queue entry closed) or
    ``ignored`` (nothing held the lead)."""
    leaving = {t.lead_id: t for t in sorted(transitions, key=lambda t: t.occurred_at)}
    recycled = [t for t in leaving.values() if t.to_stage == Stage.RECYCLED]
    known = await tracks(session) if recycled else []
    track_names = {
        t.lead_id: track.name for t in recycled if (track := track_for(known, t)) is not None
    }
    closed = await close_assignments(session, leaving, now)
    slack = await _slack_urls(session, closed)
    for row in closed:
        transition = leaving[row.lead_id]
        payload = released_payload(
            row.id, row.rep_id, transition, track_names.get(row.lead_id), now
        )
        name = transition.to_stage.value
        session.add(webhook_row(f"msg_{name}_{row.id}", row.rep_id, payload))
        url = slack.get(row.rep_id) or (slack.get(row.pool_id) if row.pool_id else None)
        if url:
            session.add(
                OutboxRow(**slack_notice(f"slack_{name}_{row.id}", row.rep_id, url, payload))
            )
    withdrawn = await withdraw_queued(session, leaving)
    enrolled, _ = await enrol_in_nurture(session, recycled) if recycled else (set(), {})
    held = {row.lead_id for row in closed} | withdrawn
    statuses = {
        t.transition_id: (
            "nurtured"
            if t.transition_id in enrolled
            else "released"
            if t.lead_id in held and leaving[t.lead_id] is t
            else "ignored"
        )
        for t in transitions
    }
    for status in ("nurtured", "released"):
        ids = [tid for tid, s in statuses.items() if s == status]
        if ids:
            await set_routed_status(session, ids, status)
    return statuses


async def close_assignments(
    session: AsyncSession, leaving: dict[str, Transition], now: datetime
) -> list[AssignmentRow]:
    """Close the open assignments the leads qualified for before they left."""
    rows = (
        await session.scalars(
            select(AssignmentRow)
            .where(AssignmentRow.lead_id.in_(list(leaving)), AssignmentRow.status == OPEN)
            .order_by(AssignmentRow.assigned_at)
            .with_for_update()
        )
    ).all()
    closed = []
    for row in rows:
        transition = leaving[row.lead_id]
        if row.qualified_at > transition.occurred_at:
            continue
        row.status, row.closed_at = transition.to_stage.value, now
        await one_less_open(session, row.rep_id)
        closed.append(row)
    return closed


async def withdraw_queued(session: AsyncSession, leaving: dict[str, Transition]) -> set[str]:
    """Take the leads' queue entries (SQLs and SDR tasks waiting for someone) out of the
    queue; the leads that had one."""
    waiting = (
        await session.scalars(
            select(RoutedTransition)
            .where(
                RoutedTransition.lead_id.in_(list(leaving)),
                RoutedTransition.status.in_(WAITING),
            )
            .with_for_update()
        )
    ).all()
    out = set()
    for row in waiting:
        if Transition.model_validate(row.payload).occurred_at <= leaving[row.lead_id].occurred_at:
            row.status = "withdrawn"
            out.add(row.lead_id)
    return out


async def _slack_urls(session: AsyncSession, closed: list[AssignmentRow]) -> dict[uuid.UUID, str]:
    """The Slack incoming-webhook URLs of the closed assignments' reps and pools."""
    reps = {row.rep_id for row in closed}
    pools = {row.pool_id for row in closed if row.pool_id is not None}
    out: dict[uuid.UUID, str] = {}
    if reps:
        query = select(Rep.id, Rep.slack_webhook_url).where(Rep.id.in_(reps))
        out |= {i: url for i, url in (await session.execute(query)).all() if url}
    if pools:
        query = select(Pool.id, Pool.slack_webhook_url).where(Pool.id.in_(pools))
        out |= {i: url for i, url in (await session.execute(query)).all() if url}
    return out
