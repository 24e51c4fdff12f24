"""Cold timers: a heap of (due time, lead) so recycling fires without new events.

The heap is derived state: each lead's ``due`` lives in its changelogged table
entry, so after a restart or rebalance the heap is rebuilt from the table and
timers that came due while the worker was down fire at once. Entries are not
removed when a lead's due time moves; a popped entry is checked against the
lead's current state before anything fires.
"""

from __future__ import annotations

import heapq


class TimerQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._scheduled: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._scheduled)

    def schedule(self, lead_id: str, due: float | None) -> None:
        if due is None:
            self._scheduled.pop(lead_id, None)
            return
        if self._scheduled.get(lead_id) == due:
            return
        self._scheduled[lead_id] = due
        heapq.heappush(self._heap, (due, lead_id))

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
