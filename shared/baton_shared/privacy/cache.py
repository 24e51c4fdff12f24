"""The data keys a process holds: each for at most ``ttl_seconds``, at most ``max_keys``
of them (least recently used dropped first). Pure: the caller passes ``now``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class KeyCache:
    def __init__(self, ttl_seconds: float, max_keys: int) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_keys = max_keys
        self._keys: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def get(self, subject: str, now: float) -> bytes | None:
        entry = self._keys.get(subject)
        if entry is None:
            return None
        key, expires_at = entry
        if now >= expires_at:
            del self._keys[subject]
            return None
        self._keys.move_to_end(subject)
        return key

    def put(self, subject: str, key: bytes, now: float) -> None:
        if self.ttl_seconds <= 0 or self.max_keys <= 0:
            return
        self._keys[subject] = (key, now + self.ttl_seconds)
        self._keys.move_to_end(subject)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)

    def drop(self, subjects: Iterable[str]) -> None:
        for subject in subjects:
            self._keys.pop(subject, None)

    def __len__(self) -> int:
        return len(self._keys)
