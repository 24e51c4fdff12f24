"""Merged leads: an id the scorer merged into another lead means that lead from then on.

:class:`MergeStore` applies the scorer's ``leads.merges`` records; routing applies the
merge its survivor's merge transition names (:func:`follow_merges`, inside the routing
transaction) — whichever comes first does it, the other finds it done. Either way
(:func:`apply_merges`), under both leads' locks:

* the merged id becomes an alias of the survivor (aliases stay one hop: those of the
  merged id move to the survivor);
* one open assignment goes on as the survivor's: an SQL one before an SDR task, the
  survivor's before the merged lead's. It keeps its rep, id and capacity, and no
  webhook goes out; any other open one of the two leads is closed ``merged``, its
  rep's capacity freed and the rep told (``lead.taken_back``, reason ``lead_merged``).
  The merged lead's other assignments move too (its history);
* the merged lead's waiting queue entries are closed ``merged``: the survivor's own
  transitions carry its stage from now on.

A transition of a merged-away id (emitted before the merge, consumed after it) is not
routed, and the survivor's merge transition to SQL is not routed when the survivor
holds an open SQL assignment: no lead gets a second rep because of a merge.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_router.payloads import taken_back_payload
from baton_router.store.assigning import OPEN, one_less_open, set_routed_status
from baton_router.store.outbox import webhook_row
from baton_router.tables import AssignmentRow, LeadAlias, RoutedTransition
from baton_shared import lead_aliases
from baton_shared.schemas import LeadMerged, Stage, Transition

MERGED = "merged"  # an assignment or queue entry closed by a merge; a transition not routed
MERGE_TRIGGER = "merge"  # the scorer's merge transitions: trigger_event_id "merge:<merged id>"
WAITING = ("queued", "sdr_queued")

_LOCK_LEADS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('router-lead:' || k, 0)) "
    "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k"
)


@dataclass(frozen=True)
class Merge:
    """What one merge did to the router's assignments."""

    merged_id: str
    survivor_id: str
    kept: AssignmentRow | None  # the survivor's open assignment after the merge
    closed: tuple[AssignmentRow, ...] = ()  # open ones closed ``merged``


def merged_from(transition: Transition) -> str | None:
    """The id a merge transition names as merged into its lead, else None."""
    if transition.trigger_event != MERGE_TRIGGER:
        return None
    merged = transition.trigger_event_id.removeprefix(f"{MERGE_TRIGGER}:")
    return merged if merged and merged != transition.trigger_event_id else None


async def lock_leads(session: AsyncSession, lead_ids: Iterable[str]) -> None:
    """The leads' advisory locks until commit, in one sorted order (no deadlock between
    two callers)."""
    await session.execute(_LOCK_LEADS, {"keys": sorted(set(lead_ids))})


async def survivors(session: AsyncSession, lead_ids: Iterable[str]) -> dict[str, str]:
    """The survivor of each of ``lead_ids`` that was merged away (the others are absent)."""
    return await lead_aliases.survivors(session, LeadAlias, lead_ids)


async def apply_merges(
    session: AsyncSession, pairs: Sequence[tuple[str, str]], now: datetime
) -> list[Merge]:
    """Apply (merged id, survivor id) merges in order, in the caller's transaction (module
    doc). Idempotent: a merge applied already changes nothing."""
    await lock_leads(session, [lead for pair in pairs for lead in pair])
    aliases = await survivors(session, [lead for pair in pairs for lead in pair])
    if extra := set(aliases.values()) - {lead for pair in pairs for lead in pair}:
        await lock_leads(session, extra)  # a chain: the survivor's own survivor
    done = []
    for merged, named in pairs:
        survivor = await lead_aliases.record_merge(session, LeadAlias, aliases, merged, named, now)
        if survivor is None:
            continue  # applied already (or a merge back into a lead merged into it)
        done.append(await _move_assignments(session, merged, survivor, now))
        await session.execute(
            update(RoutedTransition)
            .where(RoutedTransition.lead_id == merged, RoutedTransition.status.in_(WAITING))
            .values(status=MERGED)
        )
    return done


async def follow_merges(
    session: AsyncSession, transitions: Sequence[Transition], now: datetime
) -> set[str]:
    """Inside a routing transaction, before anything is decided for ``transitions`` (new
    ones): apply the merges their merge transitions name, and return the ids of those not
    to route (status ``merged``): transitions of merged-away ids, and merge transitions
    to SQL of a lead that holds an open SQL assignment now."""
    merging = [(m, t.lead_id) for t in transitions if (m := merged_from(t)) is not None]
    sqls = [t for t in transitions if t.to_stage == Stage.SQL]
    if merging or sqls:
        # A merge applied meanwhile must not miss an assignment made under a merged id.
        await lock_leads(session, [t.lead_id for t in sqls] + [i for p in merging for i in p])
    if merging:
        await apply_merges(session, merging, now)
    aliases = await survivors(session, {t.lead_id for t in transitions})
    skipped = {t.transition_id for t in transitions if t.lead_id in aliases}
    kept = [t for t in sqls if t.transition_id not in skipped and merged_from(t) is not None]
    if kept:
        held = set(
            (
                await session.scalars(
                    select(AssignmentRow.lead_id).where(
                        AssignmentRow.lead_id.in_({t.lead_id for t in kept}),
                        AssignmentRow.status == OPEN,
                        AssignmentRow.stage == Stage.SQL.value,
                    )
                )
            ).all()
        )
        skipped |= {t.transition_id for t in kept if t.lead_id in held}
    if skipped:
        await set_routed_status(session, list(skipped), MERGED)
    return skipped


class MergeStore:
    """Applies ``leads.merges`` records and resolves ids for the API."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self._sessions = sessions

    async def apply(self, records: Sequence[LeadMerged], now: datetime) -> list[Merge]:
        """A consumed batch of merges, in one transaction."""
        pairs = [(r.merged_id, r.survivor_id) for r in records]
        if not pairs:
            return []
        async with self._sessions.begin() as session:
            return await apply_merges(session, pairs, now)

    async def resolve(self, lead_id: str) -> str:
        """The lead ``lead_id`` means now: its survivor if it was merged away, else itself."""
        async with self._sessions() as session:
            return (await survivors(session, [lead_id])).get(lead_id, lead_id)


async def _move_assignments(
    session: AsyncSession, merged: str, survivor: str, now: datetime
) -> Merge:
    rows = (
        await session.scalars(
            select(AssignmentRow)
            .where(AssignmentRow.lead_id.in_((merged, survivor)), AssignmentRow.status == OPEN)
            .order_by(AssignmentRow.id)
            .with_for_update()
        )
    ).all()
    kept = lead_aliases.goes_on(rows, survivor, lambda r: r.assigned_at)
    closed = tuple(r for r in rows if r is not kept)
    for row in closed:
        row.status, row.closed_at = MERGED, now
        await one_less_open(session, row.rep_id)
        to = str(kept.rep_id) if kept is not None else None
        payload = taken_back_payload(row.id, row.lead_id, row.rep_id, "lead_merged", to, now)
        session.add(webhook_row(f"msg_taken_back_{row.id}", row.rep_id, payload))
    await session.flush()
    await session.execute(
        update(AssignmentRow).where(AssignmentRow.lead_id == merged).values(lead_id=survivor)
    )
    return Merge(merged, survivor, kept, closed)
