"""``/v1/leads/{lead_id}``: a lead's assignments, and a rep's activity on it.

Activity (accepted / rejected / contacted / qualified with its framework's fields / won /
lost) is published to ``leads.activity`` and answered 202 once Kafka acknowledged. A rep token
acts only on its own leads (another rep's lead is a 404, so ids do not leak), and only
while the lead is still its own (``scope.py``: a lead that moved on is a 409). A lead
merged into another is its survivor here: its assignments, and activity on it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status

from baton_router.api.deps import (
    ERRORS,
    ActionsDep,
    CallerDep,
    ConfigDep,
    ListingsDep,
    ServiceDep,
)
from baton_router.api.idempotency import IDEMPOTENT, IdempotentRoute
from baton_router.api.models.leads import ActivityAccepted, ActivityIn, AssignmentOut
from baton_router.scope import OutOfScope, acting_assignment
from baton_router.store.listing import LEAD_ASSIGNMENTS
from baton_router.tables import AssignmentRow
from baton_shared.clock import utcnow
from baton_shared.ids import stable_id
from baton_shared.instants import outside_skew
from baton_shared.pagination import Page, PageDep
from baton_shared.problems import FieldProblem, ProblemError, problem_responses
from baton_shared.schemas import Activity

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["leads"], route_class=IdempotentRoute)


def in_scope(
    current: AssignmentRow,
    rep_id: uuid.UUID,
    assignment_id: uuid.UUID | None,
    mine: list[AssignmentRow],
) -> AssignmentRow:
    """The rep's current assignment of the lead, or the refusal as a problem (403/409)."""
    try:
        return acting_assignment(current, rep_id, assignment_id, mine)
    except OutOfScope as refused:
        errors = (
            [FieldProblem(path=refused.path, rule="not_yours", message=refused.detail)]
            if refused.path
            else None
        )
        kind = "forbidden" if refused.status == 403 else "no-longer-yours"
        raise ProblemError(refused.status, refused.detail, kind=kind, errors=errors) from None


async def survivor_of(lead_id: str, service: ServiceDep) -> str:
    """The lead a path's ``lead_id`` means now: a lead merged away is its survivor."""
    return await service.stores.merges.resolve(lead_id)


LeadDep = Annotated[str, Depends(survivor_of)]


def assignment_out(row: AssignmentRow) -> AssignmentOut:
    return AssignmentOut(
        assignment_id=row.id,
        lead_id=row.lead_id,
        rep_id=row.rep_id,
        transition_id=row.transition_id,
        strategy=row.strategy,
        express=row.express,
        status=row.status,
        qualified_at=row.qualified_at,
        assigned_at=row.assigned_at,
        sla_due_at=row.sla_due_at,
        reassignments=row.reassignments,
        stage=row.stage or "sql",
    )


@router.get(
    "/leads/{lead_id}/assignments",
    response_model=Page[AssignmentOut],
    responses=problem_responses(404, described={404: "A rep token asking for a lead not its own"}),
)
async def lead_assignments(
    lead_id: LeadDep, who: CallerDep, listings: ListingsDep, page: PageDep
) -> Page[AssignmentOut]:
    """The lead's assignments (a rep token: its own), oldest first, a page at a time."""
    after = page.after(LEAD_ASSIGNMENTS)
    rows = await listings.lead_assignments(lead_id, who.rep_id, after, page.fetch)
    if not who.is_admin and not rows and after is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no lead {lead_id} of yours")
    return page.page(rows, LEAD_ASSIGNMENTS, assignment_out)


@router.post(
    "/leads/{lead_id}/activity",
    status_code=202,
    response_model=ActivityAccepted,
    dependencies=[IDEMPOTENT],
    responses=problem_responses(
        404,
        409,
        503,
        described={
            409: "The lead is no longer the rep's (re-assigned), or the named assignment is "
            "not its current one",
            503: "Kafka unavailable; retry",
        },
    ),
)
async def record_activity(
    lead_id: LeadDep,
    body: ActivityIn,
    who: CallerDep,
    config: ConfigDep,
    actions: ActionsDep,
    service: ServiceDep,
) -> ActivityAccepted:
    now = utcnow()
    if body.occurred_at is not None:
        settings = service.settings
        ahead = timedelta(seconds=settings.max_future_seconds)
        behind = timedelta(seconds=settings.max_past_seconds)
        wrong = outside_skew(body.occurred_at, now, ahead, behind)
        if wrong is not None:
            error = FieldProblem(path="body.occurred_at", rule="out_of_range", message=wrong)
            detail = f"invalid request: body.occurred_at {wrong}"
            raise ProblemError(422, detail, kind="validation-error", errors=[error])
    current = await config.current_assignment(lead_id)
    if who.is_admin:
        rep_id = body.rep_id or (current.rep_id if current else None)
    else:
        if body.rep_id is not None and body.rep_id != who.rep_id:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a rep acts only as itself")
        mine = [a for a in await config.assignments_for_lead(lead_id) if a.rep_id == who.rep_id]
        if not mine or current is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no lead {lead_id} of yours")
        rep_id, current = who.rep_id, in_scope(current, who.rep_id, body.assignment_id, mine)
    occurred_at = body.occurred_at or now
    assignment_id = body.assignment_id or (current.id if current else None)
    activity = Activity(
        activity_id=body.activity_id
        or stable_id(lead_id, body.kind.value, occurred_at.isoformat()),
        lead_id=lead_id,
        rep_id=str(rep_id) if rep_id else None,
        kind=body.kind,
        reason=body.reason,
        occurred_at=occurred_at,
        assignment_id=str(assignment_id) if assignment_id else None,
        bant=body.bant,
        framework=body.framework,
        fields=body.fields,
    )
    await actions.record_activity(activity, rep_id)
    return ActivityAccepted(activity_id=activity.activity_id, lead_id=lead_id, kind=body.kind)
