"""The webhook bodies the router sends, built from plain data. Pure: no database, no
clock (``now`` is passed in).

``lead.assigned`` / ``lead.sdr_task`` tell a rep what to act on and how (with one-click
``links`` when the context signs them); ``lead.nurture``
enrols an MQL in a track; ``lead.taken_back`` and ``lead.escalated`` follow an SLA
breach or a lead that became SQL. The store writes these into outbox rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from baton_router.links import LinkSigner
from baton_router.routing import lead_facts
from baton_shared.schemas import Assignment, Stage, Transition
from baton_shared.sla_policy import SlaPolicy, load_policy

TERRITORY_FIELDS = (
    "country", "region", "segment", "company_size", "industry", "language", "email_domain",
)  # fmt: skip


@dataclass(frozen=True)
class PayloadContext:
    """What the webhook body needs beyond the assignment: where the rep acts, and the SLA
    policy the due time comes from (the SLA monitor's own, so the rep is told the
    deadline its clock will fire at)."""

    public_url: str = "http://127.0.0.1:8001"
    sla_policy: SlaPolicy = field(default_factory=load_policy)
    history_limit: int = 10
    links: LinkSigner | None = None  # one-click links in each assignment (None: none)


def assignment_payload(
    assignment: Assignment,
    transition: Transition,
    history: list[dict[str, Any]] | None = None,
    context: PayloadContext | None = None,
    track: str | None = None,
) -> dict[str, Any]:
    """The webhook body: what a rep needs to act on the lead. ``lead.assigned`` for an SQL,
    ``lead.sdr_task`` for an MQL handed to an SDR (``track``: its nurture track)."""
    ctx = context or PayloadContext()
    lead_url = f"{ctx.public_url}/v1/leads/{assignment.lead_id}/activity"
    ref = {"assignment_id": assignment.assignment_id}
    sdr_task = assignment.stage == Stage.MQL
    data: dict[str, Any] = {
        **assignment.model_dump(mode="json", by_alias=True),
        "lead": lead_context(transition),
        "score": transition.score,
        "fit": transition.fit,
        "engagement": transition.engagement,
        "breakdown": {
            "fit": transition.fit,
            "engagement": transition.engagement,
            **(getattr(transition, "breakdown", None) or {}),
        },
        "top_signals": [s.model_dump(mode="json") for s in transition.top_signals],
        "reason": transition.reason,
        "trigger_event": transition.trigger_event,
        "trigger_event_id": transition.trigger_event_id,
        "from_stage": transition.from_stage.value,
        "to_stage": transition.to_stage.value,
        "rules_version": transition.rules_version,
        "history": history or [],
        "actions": {
            "url": lead_url,
            "method": "POST",
            "accept": {"kind": "accepted", **ref},
            "reject": {"kind": "rejected", "reason": "<why>", **ref},
            "contacted": {"kind": "contacted", **ref},
            "qualified": {"kind": "qualified", "bant": ["budget", "authority"], **ref},
            "won": {"kind": "won", **ref},
            "lost": {"kind": "lost", "reason": "<why>", **ref},
        },
    }
    if ctx.links is not None:
        assignment_id, rep_id = uuid.UUID(assignment.assignment_id), uuid.UUID(assignment.rep_id)
        data["links"] = ctx.links.links(assignment_id, rep_id, assignment.assigned_at)
    if sdr_task:
        data["track"] = track
    return {
        "type": "lead.sdr_task" if sdr_task else "lead.assigned",
        "timestamp": assignment.assigned_at.isoformat(),
        "data": data,
    }


def lead_context(transition: Transition) -> dict[str, Any]:
    """Who the lead is: identifiers, the traits as the scorer knows them, and the canonical
    territory routing matched on (country code, region, segment, ...)."""
    facts = lead_facts(transition)
    territory = {
        name: facts.attributes[name] for name in TERRITORY_FIELDS if name in facts.attributes
    }
    return {
        "lead_id": transition.lead_id,
        "email": transition.email,
        "domain": facts.domain,
        "traits": transition.traits,
        "territory": territory,
    }


def taken_back_payload(
    assignment_id: uuid.UUID,
    lead_id: str,
    rep_id: uuid.UUID,
    reason: str,
    new_rep_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """``lead.taken_back``: the rep is no longer to work the lead. ``reason`` is
    ``sla_breached`` (re-assigned to ``reassigned_to``, or a manager was told),
    ``lead_became_sql`` (an SDR task ended because the lead is an AE's now) or
    ``lead_merged`` (the lead merged into another that ``reassigned_to`` keeps)."""
    return {
        "type": "lead.taken_back",
        "timestamp": now.isoformat(),
        "data": {
            "assignment_id": str(assignment_id),
            "lead_id": lead_id,
            "rep_id": str(rep_id),
            "reason": reason,
            "reassigned_to": new_rep_id,
        },
    }


def escalated_payload(
    assignment_id: uuid.UUID, lead_id: str, rep_id: uuid.UUID, pool: str, now: datetime
) -> dict[str, Any]:
    """``lead.escalated``: to a pool's manager, when a rep of the pool breached the SLA."""
    return {
        "type": "lead.escalated",
        "timestamp": now.isoformat(),
        "data": {
            "assignment_id": str(assignment_id),
            "lead_id": lead_id,
            "rep_id": str(rep_id),
            "pool": pool,
            "reason": "sla_breached",
        },
    }


def nurture_payload(transition: Transition, track: str) -> dict[str, Any]:
    """``lead.nurture``: an MQL enrolled in ``track``."""
    return {
        "type": "lead.nurture",
        "timestamp": transition.occurred_at.isoformat(),
        "data": {
            "lead_id": transition.lead_id,
            "transition_id": transition.transition_id,
            "track": track,
            "score": transition.score,
            "fit": transition.fit,
            "engagement": transition.engagement,
            "reason": transition.reason,
            "trigger_event": transition.trigger_event,
            "qualified_at": transition.occurred_at.isoformat(),
        },
    }
