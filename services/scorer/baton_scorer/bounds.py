"""Size caps on what a lead's state accumulates, so no state, transition or held
anonymous history can outgrow Kafka's message limit (1 MiB by default) and stall the
scorer on a record it cannot write.

Ingest bounds each event (32 KiB). What grows over many events is bounded here:

* traits: a lead keeps at most ``MAX_TRAIT_KEYS`` keys and ``MAX_TRAITS_BYTES`` of
  them (as JSON); past that, the oldest keys are dropped — never one the event just
  set. Both scoring cores merge traits through :func:`merge_traits`, and so do merges.
* the anonymous events held for one anonymous id before an identify:
  ``identity.MAX_PENDING`` events and ``MAX_PENDING_BYTES`` of them, oldest dropped.

``baton_scorer_state_trimmed_total{part}`` counts what was dropped.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from prometheus_client import Counter

MAX_TRAIT_KEYS = 200
MAX_TRAITS_BYTES = 64 * 1024
MAX_PENDING_BYTES = 256 * 1024

TRIMMED = Counter(
    "baton_scorer_state_trimmed_total",
    "Parts of lead state dropped to keep it under its size cap (traits, pending)",
    ["part"],
)
_TRAITS = TRIMMED.labels("traits")
_PENDING = TRIMMED.labels("pending")


def merge_traits(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``{**old, **new}``, trimmed to the caps by dropping the oldest keys ``new`` did
    not set. A new dict: the old one is never mutated (transitions share it)."""
    merged = {**old, **new}
    size = _json_size(merged)
    if len(merged) <= MAX_TRAIT_KEYS and size <= MAX_TRAITS_BYTES:
        return merged
    for key in [k for k in merged if k not in new]:
        if len(merged) <= MAX_TRAIT_KEYS and size <= MAX_TRAITS_BYTES:
            break
        size -= _json_size({key: merged.pop(key)}) - 2
        _TRAITS.inc()
    return merged


def _json_size(value: dict[str, Any]) -> int:
    """Its size as JSON: orjson, or the standard library for what orjson refuses
    (integers past 64 bits, which JSON allows and traits may hold)."""
    try:
        return len(orjson.dumps(value))
    except TypeError:
        return len(json.dumps(value, default=str, separators=(",", ":")))


def event_bytes(event: Any) -> int:
    """The size of a held event as the aliases table stores it (about)."""
    return len(event.model_dump_json())


def trim_pending(pending: list[Any], sizes: list[int], max_events: int) -> int:
    """Drop the oldest held events (in place, with their ``sizes``) until at most
    ``max_events`` are left and they fit ``MAX_PENDING_BYTES``; how many were dropped."""
    total, dropped = sum(sizes), 0
    while len(pending) > max_events or (len(pending) > 1 and total > MAX_PENDING_BYTES):
        del pending[0]
        total -= sizes.pop(0)
        dropped += 1
    if dropped:
        _PENDING.inc(dropped)
    return dropped
