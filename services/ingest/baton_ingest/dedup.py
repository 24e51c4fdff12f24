"""Recently accepted event ids, to mark repeats. Best effort, per process.

The authoritative dedup is downstream (the scorer drops an ``event_id`` it has
seen for the lead); this mark lets every consumer see a likely repeat cheaply.
"""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    """A bounded set that forgets the oldest ids first."""

    def __init__(self, capacity: int):
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        if self._capacity <= 0:
            return
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
