"""MQL nurture and SDR tasks, inside the caller's routing transaction.

An MQL is enrolled in the first nurture track whose conditions match (a ``lead.nurture``
webhook to the track); a track with an SDR pool also asks for an SDR task, which the
assigner hands to an SDR of that pool. When the lead later becomes SQL, its SDR task is
superseded: the SDR's slot is freed and they are told (``lead.taken_back``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from baton_router.payloads import nurture_payload, taken_back_payload
from baton_router.routing import Condition, lead_facts
from baton_router.store.assigning import OPEN, SdrTasks, one_less_open
from baton_router.store.outbox import webhook_row
from baton_router.tables import AssignmentRow, NurtureTrack, OutboxRow, RoutedTransition
from baton_shared.schemas import Stage, Transition

SUPERSEDED = "superseded"  # an SDR task whose lead became SQL


def track_for(tracks: list[NurtureTrack], transition: Transition) -> NurtureTrack | None:
    """The first track (in position order) whose conditions all match the lead."""
    lead = lead_facts(transition)
    return next(
        (t for t in tracks if all(Condition(**c).matches(lead) for c in t.conditions)), None
    )


async def tracks(session: AsyncSession) -> list[NurtureTrack]:
    """Every nurture track, in the order they are tried."""
    query = select(NurtureTrack).order_by(NurtureTrack.position, NurtureTrack.created_at)
    return list((await session.scalars(query)).all())


async def enrol_in_nurture(
    session: AsyncSession, transitions: list[Transition]
) -> tuple[set[str], SdrTasks]:
    """A ``lead.nurture`` webhook to the first track whose conditions match. Returns the
    enrolled transition ids, and those whose track asks for an SDR task."""
    matched = _match(await tracks(session), transitions)
    for transition, track in matched:
        payload = nurture_payload(transition, track.name)
        session.add(track_webhook(f"msg_nurture_{transition.transition_id}", track, payload))
    return {t.transition_id for t, _ in matched}, _sdr_tasks(matched)


def track_webhook(message_id: str, track: NurtureTrack, payload: dict[str, Any]) -> OutboxRow:
    """The outbox row of a webhook to a nurture track (signed with the track's secret)."""
    return OutboxRow(
        kind="webhook",
        message_id=message_id[:80],
        track_id=track.id,
        target_url=track.webhook_url,
        payload=payload,
    )


async def sdr_tasks(session: AsyncSession, transitions: list[Transition]) -> SdrTasks:
    """The MQLs whose nurture track (as configured now) asks for an SDR task."""
    return _sdr_tasks(_match(await tracks(session), transitions))


def _match(
    known: list[NurtureTrack], transitions: list[Transition]
) -> list[tuple[Transition, NurtureTrack]]:
    pairs = ((t, track_for(known, t)) for t in transitions)
    return [(t, track) for t, track in pairs if track is not None]


def _sdr_tasks(matched: list[tuple[Transition, NurtureTrack]]) -> SdrTasks:
    return {
        t.transition_id: (track.sdr_pool_id, track.name)
        for t, track in matched
        if track.sdr_pool_id is not None
    }


async def supersede_sdr_tasks(
    session: AsyncSession, lead_ids: list[str], now: datetime
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
        await one_less_open(session, rep_id)
        payload = taken_back_payload(assignment_id, lead_id, rep_id, "lead_became_sql", None, now)
        session.add(webhook_row(f"msg_taken_back_{assignment_id}", rep_id, payload))
    await session.execute(
        update(RoutedTransition)
        .where(RoutedTransition.lead_id.in_(lead_ids), RoutedTransition.status == "sdr_queued")
        .values(status=SUPERSEDED)
    )
    return {lead_id for _, lead_id, _ in closed}
