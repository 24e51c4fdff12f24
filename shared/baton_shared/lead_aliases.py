"""Lead aliases in a service's database: an id merged away (``leads.merges``) and the
lead it means now. The router and the SLA monitor each keep a table of this shape
(``merged_id`` primary key, ``survivor_id``, ``merged_at``) and upkeep it the same way:
aliases stay one hop (the aliases of a lead merged away move to its survivor), so one
lookup resolves any id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


async def survivors(session: AsyncSession, table: Any, lead_ids: Iterable[str]) -> dict[str, str]:
    """The survivor of each of ``lead_ids`` that was merged away (the others are absent).
    ``table``: the service's alias model."""
    ids = list(set(lead_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(table.merged_id, table.survivor_id).where(table.merged_id.in_(ids))
    )
    return {merged: survivor for merged, survivor in rows.all()}


async def record_merge(
    session: AsyncSession,
    table: Any,
    aliases: dict[str, str],
    merged: str,
    survivor: str,
    now: datetime,
) -> str | None:
    """Record ``merged`` as an alias of ``survivor`` (itself resolved through
    ``aliases``, the known aliases of the ids involved, updated in place). Returns the
    survivor, or None when the merge was recorded already (or names a lead merged into
    the one merged): nothing more to do."""
    survivor = aliases.get(survivor, survivor)
    if survivor == merged or aliases.get(merged) == survivor:
        return None
    await session.execute(
        update(table).where(table.survivor_id == merged).values(survivor_id=survivor)
    )
    await session.execute(
        insert(table)
        .values(merged_id=merged, survivor_id=survivor, merged_at=now)
        .on_conflict_do_update(index_elements=[table.merged_id], set_={"survivor_id": survivor})
    )
    for key, value in list(aliases.items()):
        if value == merged:
            aliases[key] = survivor
    aliases[merged] = survivor
    return survivor


def goes_on(open_items: Sequence[T], survivor: str, started: Callable[[T], datetime]) -> T | None:
    """Of two merged leads' open items (assignments, first-touch clocks: with ``stage``
    and ``lead_id``) the one that goes on as the survivor's: an SQL one before an MQL
    one, the survivor's before the merged lead's, then the newest. None for none."""
    if not open_items:
        return None
    return min(
        open_items,
        key=lambda i: (
            getattr(i, "stage", None) != "sql",
            getattr(i, "lead_id", None) != survivor,
            -started(i).timestamp(),
        ),
    )
