"""Recently accepted event ids, to mark repeats. Best effort, per process.

The authoritative dedup is downstream (the scorer drops an ``event_id`` it has
seen for the lead); this mark lets every consumer see a likely repeat cheaply.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class RecentIds:
    """A bounded set that forgets the oldest ids first. Takes a request's ids at once:
    this runs for every event."""

    def __init__(self, capacity: int):
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def seen(self, event_ids: Iterable[str]) -> list[bool]:
        ids = self._ids
        return [event_id in ids for event_id in event_ids]

    def add(self, event_id: str) -> None:
        self.add_all((event_id,))

    def add_all(self, event_ids: Iterable[str]) -> None:
        if self._capacity <= 0:
            return
        ids = self._ids
        for event_id in event_ids:
            if event_id in ids:
                ids.move_to_end(event_id)
            else:
                ids[event_id] = None
        while len(ids) > self._capacity:
            ids.popitem(last=False)
