"""The reporting store: journeys in PostgreSQL, folded batch by batch.

:meth:`JourneyStore.apply` loads the journeys a batch touches (and the survivors they
were merged into), folds the batch into them with the pure
:class:`baton_shared.conversion.Ledger` and writes back the ones that changed, in one
transaction under one advisory lock (reporting writes take turns: the live feed of
every monitor and a rebuild). Because the fold is idempotent and commutative, a batch
applied twice, or out of order with another, leaves the same rows. Reads and writes
go through statements compiled once (the write is one upsert executed with every
changed row), so a batch costs the event loop it shares with the sweep little more
than the fold. :meth:`JourneyStore.window` reads its rows :data:`READ_CHUNK` at a time
and builds the journeys in a worker thread: a month of leads is many rows, and the
loop keeps its turns meanwhile. In privacy mode (``keys`` set) the batch's sealed
transitions are opened first, so a journey's industry and segment come from the lead's
traits as without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row, RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_shared.conversion import Fact, Journey, Ledger, lead_ids_of
from baton_shared.privacy import KeyStore
from baton_shared.sealed_transitions import open_transitions
from baton_sla_monitor.reporting.tables import JourneyRow

LOCK_KEY = 0x42_52_45_50  # "BREP": one writer at a time
MERGE_HOPS = 8  # survivors of survivors followed when loading
READ_CHUNK = 500  # rows of a window read per round trip
_TABLE = JourneyRow.__table__
_COLUMNS = _TABLE.columns
_WIDTHS = {c.name: c.type.length for c in _COLUMNS if getattr(c.type, "length", None)}
_INSERT = insert(_TABLE)
#: The write: one statement, executed with every changed journey's row.
UPSERT = _INSERT.on_conflict_do_update(
    index_elements=["lead_id"],
    set_={c.name: _INSERT.excluded[c.name] for c in _COLUMNS if c.name != "lead_id"},
)


def _row(journey: Journey) -> dict[str, Any]:
    """The journey as a row; free-text labels (a UTM campaign is whatever a link said)
    cut to their column's width."""
    row = journey.as_row()
    for name, width in _WIDTHS.items():
        if isinstance(row.get(name), str):
            row[name] = row[name][:width]
    for name in ("contacted_ats", "met_clocks", "breached_clocks"):
        row[name] = list(row[name])
    return row


def _journey(row: RowMapping) -> Journey:
    return Journey.from_row(dict(row))


def _journeys(rows: Sequence[Row[Any]]) -> list[Journey]:
    return [_journey(r._mapping) for r in rows]


class JourneyStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], keys: KeyStore | None = None):
        self._sessions = sessions
        self.keys = keys  # privacy mode: opens sealed transitions (set once it is open)

    async def apply(self, facts: Sequence[Fact]) -> int:
        """Fold a batch in, in one transaction; how many journeys changed."""
        if not facts:
            return 0
        if self.keys is not None:
            facts = await open_transitions(self.keys, list(facts))
        ids: set[str] = set()
        for fact in facts:
            ids |= lead_ids_of(fact)
        async with self._sessions.begin() as session:
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
            ledger = Ledger()
            await _load(session, ledger, ids)
            ledger.fold(facts)
            rows = [_row(ledger.journeys[lead]) for lead in sorted(ledger.changed)]
            if rows:
                await session.execute(UPSERT, rows)
        return len(rows)

    async def window(self, since: datetime, until: datetime) -> list[Journey]:
        """Journeys that entered the funnel, or first became MQL, in ``[since, until)``."""
        c = _TABLE.c
        query = select(*_COLUMNS).where(
            c.merged_into.is_(None),
            or_(
                (c.entered_at >= since) & (c.entered_at < until),
                (c.mql_at >= since) & (c.mql_at < until),
            ),
        )
        rows: list[Row[Any]] = []
        async with self._sessions() as session:
            result = await session.stream(query.execution_options(yield_per=READ_CHUNK))
            async for chunk in result.partitions():
                rows.extend(chunk)
        return await asyncio.to_thread(_journeys, rows)

    async def clear(self) -> None:
        """Empty the store (a rebuild starts from fresh tables)."""
        async with self._sessions.begin() as session:
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
            await session.execute(text("TRUNCATE reporting.journeys"))


async def _load(session: AsyncSession, ledger: Ledger, ids: set[str]) -> None:
    pending = set(ids)
    for _ in range(MERGE_HOPS):
        if not pending:
            return
        query = select(*_COLUMNS).where(_TABLE.c.lead_id.in_(sorted(pending)))
        found = [_journey(r) for r in (await session.execute(query)).mappings()]
        for journey in found:
            ledger.journeys[journey.lead_id] = journey
        pending = {j.merged_into for j in found if j.merged_into} - ledger.journeys.keys()
