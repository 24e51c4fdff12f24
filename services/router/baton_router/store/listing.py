"""The API's lists, one page at a time: reps, pools, rules, accounts, nurture tracks,
dead letters, a rep's leads and a lead's assignments.

Each list has a :class:`~baton_shared.pagination.SortKey` (a unique order) and a read of
``limit`` rows after a cursor's key. The full reads routing and ``baton routing export``
need stay in :mod:`baton_router.store.configuration`.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_router.tables import (
    Account,
    AssignmentRow,
    NurtureTrack,
    OutboxRow,
    Pool,
    PoolMember,
    Rep,
    RoutingRule,
)
from baton_shared.pagination import SortKey

After = tuple[Any, ...] | None

REPS = SortKey(Rep.created_at, Rep.id)
POOLS = SortKey(Pool.created_at, Pool.id)
RULES = SortKey(RoutingRule.position, RoutingRule.created_at, RoutingRule.id)
ACCOUNTS = SortKey(Account.domain)
TRACKS = SortKey(NurtureTrack.position, NurtureTrack.created_at, NurtureTrack.id)
DEAD_LETTERS = SortKey(OutboxRow.id, descending=True)
REP_LEADS = SortKey(AssignmentRow.assigned_at, AssignmentRow.id, descending=True)
LEAD_ASSIGNMENTS = SortKey(AssignmentRow.assigned_at, AssignmentRow.id)


class Listings:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self._sessions = sessions

    async def reps(self, after: After, limit: int) -> list[Rep]:
        """Reps not archived, oldest first."""
        query = select(Rep).where(Rep.archived_at.is_(None))
        return await REPS.read(self._sessions, query, after, limit)

    async def pools(
        self, after: After, limit: int
    ) -> tuple[list[Pool], dict[uuid.UUID, list[uuid.UUID]]]:
        """Pools, oldest first, and the members of each."""
        pools = await POOLS.read(self._sessions, select(Pool), after, limit)
        async with self._sessions() as session:
            members = (
                await session.scalars(
                    select(PoolMember).where(PoolMember.pool_id.in_([p.id for p in pools]))
                )
            ).all()
        by_pool: dict[uuid.UUID, list[uuid.UUID]] = {p.id: [] for p in pools}
        for member in members:
            by_pool[member.pool_id].append(member.rep_id)
        return pools, by_pool

    async def rules(self, after: After, limit: int) -> list[RoutingRule]:
        """Rules in the order they are tried."""
        return await RULES.read(self._sessions, select(RoutingRule), after, limit)

    async def accounts(self, after: After, limit: int) -> list[Account]:
        """Accounts by domain."""
        return await ACCOUNTS.read(self._sessions, select(Account), after, limit)

    async def tracks(self, after: After, limit: int) -> list[NurtureTrack]:
        """Nurture tracks in the order they are tried."""
        return await TRACKS.read(self._sessions, select(NurtureTrack), after, limit)

    async def dead_letters(self, after: After, limit: int) -> list[OutboxRow]:
        """Outbox rows that exhausted their retries (or hit a 410), newest first."""
        query = select(OutboxRow).where(OutboxRow.status == "dead")
        return await DEAD_LETTERS.read(self._sessions, query, after, limit)

    async def rep_leads(self, rep_id: uuid.UUID, after: After, limit: int) -> list[AssignmentRow]:
        """A rep's assignments, newest first."""
        query = select(AssignmentRow).where(AssignmentRow.rep_id == rep_id)
        return await REP_LEADS.read(self._sessions, query, after, limit)

    async def lead_assignments(
        self, lead_id: str, rep_id: uuid.UUID | None, after: After, limit: int
    ) -> list[AssignmentRow]:
        """A lead's assignments (to ``rep_id`` only, when given), oldest first."""
        query = select(AssignmentRow).where(AssignmentRow.lead_id == lead_id)
        if rep_id is not None:
            query = query.where(AssignmentRow.rep_id == rep_id)
        return await LEAD_ASSIGNMENTS.read(self._sessions, query, after, limit)
