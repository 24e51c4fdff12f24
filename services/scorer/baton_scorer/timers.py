"""Cold timers: a heap of (due time, lead) so recycling fires without new events.

The heap is derived state: each lead's ``due`` lives in its changelogged table
entry, so after a restart or rebalance the heap is refilled from the table and
timers that came due while the worker was down fire at once. The refill is
incremental (:meth:`TimerQueue.refill`, a chunk at a time between batches): a lead
scheduled from its current state meanwhile keeps that, whatever the stored copy
read later says. Entries are not removed when a lead's due time moves; a popped
entry is checked against the lead's current state before anything fires.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator


class TimerQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._scheduled: dict[str, float] = {}
        self._current: set[str] | None = None  # during a refill: scheduled from live state

    def __len__(self) -> int:
        return len(self._scheduled)

    def schedule(self, lead_id: str, due: float | None) -> None:
        """Schedule ``lead_id`` from its current state (``due`` None: no timer)."""
        if self._current is not None:
            self._current.add(lead_id)
        self._put(lead_id, due)

    def _put(self, lead_id: str, due: float | None) -> None:
        if due is None:
            self._scheduled.pop(lead_id, None)
            return
        if self._scheduled.get(lead_id) == due:
            return
        self._scheduled[lead_id] = due
        heapq.heappush(self._heap, (due, lead_id))

    def refill(self, stored: Iterator[tuple[str, float | None]], chunk: int) -> bool:
        """Schedule up to ``chunk`` leads from ``stored`` (lead id, stored due) pairs,
        skipping leads scheduled from their live state since the refill began. False
        once ``stored`` is exhausted (the refill is over)."""
        if self._current is None:
            self._current = set()
        current = self._current
        for _ in range(chunk):
            item = next(stored, None)
            if item is None:
                self._current = None
                return False
            lead_id, due = item
            if lead_id not in current:
                self._put(lead_id, due)
        return True

    def pop_due(self, now: float) -> list[str]:
        """Leads whose timer is due at ``now`` (each once)."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            due, lead_id = heapq.heappop(self._heap)
            if self._scheduled.get(lead_id) == due:
                del self._scheduled[lead_id]
                out.append(lead_id)
        return out

    def clear(self) -> None:
        self._heap.clear()
        self._scheduled.clear()
        self._current = None
