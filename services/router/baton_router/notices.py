"""What a rep (or their manager) is told about a lead after it was assigned, as webhook
bodies built from plain data. Pure: no database, no clock (``now`` is passed in).

- ``lead.recycled`` / ``lead.disqualified``: the scorer took the lead out of the funnel;
  the assignment is closed, the rep is to stop working it (``track``: the nurture track
  a recycled lead went to).
- ``lead.sla_at_risk``: the rep's first-touch deadline is near.
- ``lead.sla_breached``: to a pool's manager, what a breach on their pool did (Slack only;
  the manager's webhook gets ``lead.escalated`` when the pool escalates to them).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from baton_router.payloads import lead_context
from baton_shared.schemas import SlaEvent, Stage, Transition

#: The stages that take a lead out of its rep's hands, and the webhook type of each.
RELEASE_TYPES = {Stage.RECYCLED: "lead.recycled", Stage.DISQUALIFIED: "lead.disqualified"}


def released_payload(
    assignment_id: uuid.UUID,
    rep_id: uuid.UUID,
    transition: Transition,
    track: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The lead the rep held was recycled or disqualified by ``transition``."""
    return {
        "type": RELEASE_TYPES[transition.to_stage],
        "timestamp": now.isoformat(),
        "data": {
            "assignment_id": str(assignment_id),
            "lead_id": transition.lead_id,
            "rep_id": str(rep_id),
            "transition_id": transition.transition_id,
            "from_stage": transition.from_stage.value,
            "to_stage": transition.to_stage.value,
            "reason": transition.reason,
            "reason_kind": transition.reason_kind.value if transition.reason_kind else None,
            "score": transition.score,
            "fit": transition.fit,
            "engagement": transition.engagement,
            "occurred_at": transition.occurred_at.isoformat(),
            "track": track,
            "lead": lead_context(transition),
        },
    }


def sla_payload(
    kind: str,
    event: SlaEvent,
    qualified: Transition | None,
    now: datetime,
    **extra: Any,
) -> dict[str, Any]:
    """``lead.sla_<kind>`` (``at_risk`` to the rep, ``breached`` to the manager): the
    clock's times, the lead as it qualified (``qualified``: its SQL transition), and
    ``extra`` fields (pool, outcome)."""
    return {
        "type": f"lead.sla_{kind}",
        "timestamp": now.isoformat(),
        "data": {
            "assignment_id": event.assignment_id,
            "lead_id": event.lead_id,
            "rep_id": event.rep_id,
            "clock_id": event.clock_id,
            "started_at": event.started_at.isoformat(),
            "deadline_at": event.deadline_at.isoformat(),
            "warning_fraction": event.warning_fraction,
            "stage": event.stage,
            "express": event.express,
            "measure": event.measure.value,
            **_attempts(event),
            "lead": lead_context(qualified) if qualified else {"lead_id": event.lead_id},
            **extra,
        },
    }


def _attempts(event: SlaEvent) -> dict[str, Any]:
    """A minimum-contact-attempts clock's counts (nothing for a first-touch clock)."""
    if event.attempts_required is None:
        return {}
    return {"attempts_made": event.attempts_made, "attempts_required": event.attempts_required}
