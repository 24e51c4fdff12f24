"""The advisory locks routers take in PostgreSQL to decide one thing at a time.

``ROUTING_LOCK``: one routing decision at a time across all routers, so two routers never
both see a rep's last free slot or the same round-robin turn. ``OUTBOX_LOCK``: taken by
whoever leases outbox rows, so the count of deliveries in flight per endpoint cannot
change under the one checking it. Always taken after ``ROUTING_LOCK`` when both are held.
"""

from __future__ import annotations

ROUTING_LOCK = 0x6261746F6E  # "baton"
OUTBOX_LOCK = ROUTING_LOCK + 1
