"""One-click links in PostgreSQL: is the link still usable, and spending it once.

A verified link (``links.LinkSigner.verify``) still changes nothing when it was used
before (a row in ``router.used_links`` under its token id) or when its assignment is no
longer the rep's to act on: the lead was taken back, escalated, rejected, won or lost,
or has a newer assignment. :meth:`OneClickStore.redeem` inserts the used row, checks, and
runs the action in the same transaction: if the action fails the row is rolled back and
the link works again; a second click waits on the key and finds it used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_router.links import ForeignLink, LinkClaim, UsedLink
from baton_router.tables import AssignmentRow, UsedLinkRow

#: Assignment statuses in which the lead is still the rep's to act on: open (accepted
#: keeps it open) and contacted.
ACTIONABLE = frozenset({"open", "contacted"})


class OneClickStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self._sessions = sessions

    async def check(self, claim: LinkClaim) -> AssignmentRow:
        """The claim's assignment, if the link may still act (for the confirmation page);
        :class:`UsedLink` or :class:`ForeignLink` otherwise."""
        async with self._sessions() as session:
            used = await session.get(UsedLinkRow, claim.token_id)
            if used is not None:
                raise UsedLink(f"it was used at {used.used_at.isoformat(timespec='seconds')}")
            return await _actionable(session, claim)

    async def redeem(
        self, claim: LinkClaim, act: Callable[[AssignmentRow], Awaitable[None]]
    ) -> AssignmentRow:
        """Spend the link and run ``act`` on its assignment, all or nothing."""
        async with self._sessions.begin() as session:
            spent = await session.scalar(
                insert(UsedLinkRow)
                .values(
                    token_id=claim.token_id,
                    assignment_id=claim.assignment_id,
                    rep_id=claim.rep_id,
                    action=claim.action.value,
                )
                .on_conflict_do_nothing()
                .returning(UsedLinkRow.token_id)
            )
            if spent is None:
                raise UsedLink("it was used already")
            row = await _actionable(session, claim)
            await act(row)
            return row


async def _actionable(session: AsyncSession, claim: LinkClaim) -> AssignmentRow:
    row = await session.get(AssignmentRow, claim.assignment_id)
    if row is None or row.rep_id != claim.rep_id:
        raise ForeignLink("the assignment it names is not yours")
    latest = await session.scalar(
        select(AssignmentRow.id)
        .where(AssignmentRow.lead_id == row.lead_id)
        # An open one first: a merge can leave a lead's open assignment older than one
        # it closed (store.merges).
        .order_by(
            (AssignmentRow.status == "open").desc(),
            AssignmentRow.assigned_at.desc(),
            AssignmentRow.turn.desc(),
        )
        .limit(1)
    )
    if latest != row.id:
        raise ForeignLink("the lead was taken back and given to someone else")
    if row.status not in ACTIONABLE:
        raise ForeignLink(f"the assignment is {row.status.replace('_', ' ')} already")
    return row
