"""``/v1/reps`` and ``/v1/me``: the team's reps, their availability, tokens and leads.

A rep token may read and set its own profile's availability, and read its own leads;
everything else here needs the admin token. A change that could make a rep available
drains the queue at once.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel

from baton_router.api.deps import (
    ERRORS,
    REP_TOKEN_PREFIX,
    ActionsDep,
    AdminDep,
    CallerDep,
    ConfigDep,
    ListingsDep,
    RepIdPath,
    check_self_or_admin,
)
from baton_router.api.idempotency import IDEMPOTENT, IdempotentRoute
from baton_router.api.models.leads import AssignmentOut
from baton_router.api.models.reps import Availability, RepCreated, RepIn, RepOut, RepPatch, RepToken
from baton_router.api.routes.leads import assignment_out
from baton_router.api.targets import TargetCheckDep
from baton_router.signing import new_secret
from baton_router.store.listing import REP_LEADS, REPS
from baton_router.tables import Rep
from baton_shared.clock import utcnow
from baton_shared.pagination import Page, PageDep
from baton_shared.problems import problem_responses

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["reps"], route_class=IdempotentRoute)


def rep_out(rep: Rep, open_leads: int | None = None) -> dict[str, Any]:
    return {
        "id": rep.id,
        "name": rep.name,
        "email": rep.email,
        "webhook_url": rep.webhook_url,
        "status": rep.status,
        "created_at": rep.created_at or utcnow(),
        "timezone": rep.timezone or "UTC",
        "working_hours": rep.working_hours,
        "out_of_office": rep.out_of_office or [],
        "capacity": rep.capacity,
        "weight": rep.weight or 1,
        "skills": rep.skills or {},
        "webhook_disabled_at": rep.webhook_disabled_at,
        "open_leads": open_leads,
        "slack_webhook_url": rep.slack_webhook_url,
    }


def profile_changes(body: BaseModel) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True, mode="json")


@router.post("/reps", status_code=201, response_model=RepCreated, dependencies=[IDEMPOTENT])
async def create_rep(
    body: RepIn, _: AdminDep, actions: ActionsDep, targets: TargetCheckDep
) -> dict[str, Any]:
    await targets.check(body)
    profile = body.model_dump(exclude_unset=True, exclude_none=True, mode="json")
    for key in ("name", "email", "webhook_url"):
        profile.pop(key, None)
    secret = new_secret()  # stored sealed: the answer is the only place it is in clear
    rep = await actions.create_rep(body.name, body.email, str(body.webhook_url), secret, **profile)
    return {**rep_out(rep), "webhook_secret": secret}


@router.get("/reps", response_model=Page[RepOut])
async def list_reps(_: AdminDep, listings: ListingsDep, page: PageDep) -> Page[dict[str, Any]]:
    """Reps not archived, oldest first, a page at a time."""
    rows = await listings.reps(page.after(REPS), page.fetch)
    return page.page(rows, REPS, lambda r: rep_out(r, r.open_leads))


@router.get("/reps/{rep_id}", response_model=RepOut, responses=problem_responses(404))
async def get_rep(rep_id: RepIdPath, who: CallerDep, config: ConfigDep) -> dict[str, Any]:
    check_self_or_admin(who, rep_id)
    loads = await config.rep_loads()
    return rep_out(await config.get_rep(rep_id), loads.get(rep_id, 0))


@router.patch("/reps/{rep_id}", response_model=RepOut, responses=problem_responses(404))
async def update_rep(
    rep_id: RepIdPath, body: RepPatch, _: AdminDep, actions: ActionsDep, targets: TargetCheckDep
) -> dict[str, Any]:
    await targets.check(body)
    return rep_out(await actions.update_rep(rep_id, profile_changes(body)))


@router.put("/reps/{rep_id}/availability", response_model=RepOut, responses=problem_responses(404))
async def set_availability(
    rep_id: RepIdPath, body: Availability, who: CallerDep, actions: ActionsDep
) -> dict[str, Any]:
    """Status (online / away / offline) and out-of-office ranges; the rep may set
    their own. Going online drains the queue at once."""
    check_self_or_admin(who, rep_id)
    return rep_out(await actions.update_rep(rep_id, profile_changes(body)))


@router.delete("/reps/{rep_id}", status_code=204, responses=problem_responses(404))
async def archive_rep(rep_id: RepIdPath, _: AdminDep, config: ConfigDep) -> Response:
    await config.archive_rep(rep_id, utcnow())
    return Response(status_code=204)


@router.post(
    "/reps/{rep_id}/token",
    status_code=201,
    response_model=RepToken,
    responses=problem_responses(404),
)
async def issue_token(rep_id: RepIdPath, _: AdminDep, config: ConfigDep) -> RepToken:
    """A new bearer token for this rep (the previous one stops working)."""
    token = REP_TOKEN_PREFIX + secrets.token_urlsafe(32)
    await config.set_token(rep_id, token)
    return RepToken(rep_id=rep_id, token=token)


@router.get(
    "/reps/{rep_id}/leads", response_model=Page[AssignmentOut], responses=problem_responses(404)
)
async def rep_leads(
    rep_id: RepIdPath, who: CallerDep, config: ConfigDep, listings: ListingsDep, page: PageDep
) -> Page[AssignmentOut]:
    """The rep's assignments, newest first, a page at a time."""
    check_self_or_admin(who, rep_id)
    await config.get_rep(rep_id)
    rows = await listings.rep_leads(rep_id, page.after(REP_LEADS), page.fetch)
    return page.page(rows, REP_LEADS, assignment_out)


@router.get("/me", response_model=RepOut)
async def me(who: CallerDep, config: ConfigDep) -> dict[str, Any]:
    if who.rep_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "/v1/me needs a rep token")
    loads = await config.rep_loads()
    return rep_out(await config.get_rep(who.rep_id), loads.get(who.rep_id, 0))
