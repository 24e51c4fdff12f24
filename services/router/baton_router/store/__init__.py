"""Everything the router reads and writes in PostgreSQL, one module per responsibility.

- ``routing_writes``: a consumed batch routed in one transaction (exactly once), the queue.
- ``assigning``: deciding and writing assignments, shared by routing and escalation.
- ``team``: the team snapshot routing decides against, read under the routing lock.
- ``nurture``: MQL nurture enrolment and SDR tasks.
- ``escalation``: SLA breaches (re-assign or tell the manager) and reps closing leads.
- ``nudges``: at-risk nudges to the rep, breach messages to the pool's manager.
- ``release``: a recycled or disqualified lead leaving its rep (inside routing).
- ``outbox``: lease, deliver, retry, dead letter and replay of outbox rows.
- ``configuration``: reps, pools, rules, accounts, nurture tracks; the API's reads.
- ``listing``: the API's lists, a page at a time.
- ``idempotency``: the responses to ``Idempotency-Key`` requests, for retries.
- ``one_click``: one-click links, usable once and only on the rep's current assignment.
- ``webhook_secrets``: rotating a webhook signing secret (sealed at rest) with a grace period.
- ``merges``: leads merged into others (``leads.merges``): aliases, assignments moved.

:func:`open_stores` builds them all on one sessionmaker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_router.payloads import PayloadContext
from baton_router.secret_box import SecretBox
from baton_router.store.assigning import Assigner
from baton_router.store.configuration import ConfigStore
from baton_router.store.escalation import EscalationStore
from baton_router.store.idempotency import IdempotencyStore
from baton_router.store.listing import Listings
from baton_router.store.merges import MergeStore
from baton_router.store.nudges import NudgeStore
from baton_router.store.one_click import OneClickStore
from baton_router.store.outbox import OutboxStore
from baton_router.store.routing_writes import RoutingStore
from baton_router.store.webhook_secrets import WebhookSecretStore


@dataclass(frozen=True)
class Stores:
    config: ConfigStore
    routing: RoutingStore
    escalation: EscalationStore
    outbox: OutboxStore
    listings: Listings
    idempotency: IdempotencyStore
    one_click: OneClickStore
    merges: MergeStore
    nudges: NudgeStore
    webhook_secrets: WebhookSecretStore


def open_stores(
    sessions: async_sessionmaker[AsyncSession],
    assignments_topic: str,
    context: PayloadContext | None = None,
    fast_lease: timedelta | None = None,
    per_endpoint: int | None = None,
    box: SecretBox | None = None,
) -> Stores:
    """The router's stores. ``fast_lease``: a routed batch's outbox rows are written
    already leased to this router for that long (its dispatcher delivers them from the
    commit). ``per_endpoint``: webhooks in flight per endpoint across all routers.
    ``box``: seals webhook secrets (the local key when not given)."""
    box = box or SecretBox.local()
    assigner = Assigner(assignments_topic, context or PayloadContext(), fast_lease, per_endpoint)
    return Stores(
        config=ConfigStore(sessions, box),
        routing=RoutingStore(sessions, assigner),
        escalation=EscalationStore(sessions, assigner),
        outbox=OutboxStore(sessions, per_endpoint),
        listings=Listings(sessions),
        idempotency=IdempotencyStore(sessions, box),
        one_click=OneClickStore(sessions),
        merges=MergeStore(sessions),
        nudges=NudgeStore(sessions, assigner.context),
        webhook_secrets=WebhookSecretStore(sessions, box),
    )
