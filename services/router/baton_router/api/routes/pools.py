"""``/v1/pools``: teams, the strategy that picks among their members, and escalation.
Admin only; a change drains the queue at once."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from baton_router.api.deps import ERRORS, ActionsDep, AdminDep, ConfigDep, ListingsDep
from baton_router.api.idempotency import IDEMPOTENT, IdempotentRoute
from baton_router.api.models.pools import PoolIn, PoolOut, PoolPatch
from baton_router.api.targets import TargetCheckDep
from baton_router.store.listing import POOLS
from baton_router.tables import Pool
from baton_shared.pagination import Page, PageDep
from baton_shared.problems import problem_responses

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["routing"], route_class=IdempotentRoute)


def pool_out(pool: Pool, members: list[uuid.UUID]) -> PoolOut:
    return PoolOut(
        id=pool.id,
        name=pool.name,
        strategy=pool.strategy,  # type: ignore[arg-type]
        express=pool.express,
        members=members,
        escalation=pool.escalation,
        manager_rep_id=pool.manager_rep_id,
        max_reassignments=pool.max_reassignments,
        slack_webhook_url=pool.slack_webhook_url,
    )


@router.post(
    "/pools",
    dependencies=[IDEMPOTENT],
    status_code=201,
    response_model=PoolOut,
    responses=problem_responses(409),
)
async def create_pool(
    body: PoolIn, _: AdminDep, config: ConfigDep, actions: ActionsDep, targets: TargetCheckDep
) -> PoolOut:
    await targets.check(body)
    fields = body.model_dump(exclude={"members"})
    fields["strategy"] = body.strategy.value
    fields["slack_webhook_url"] = _url(body.slack_webhook_url)
    pool = await config.create_pool(fields, body.members)
    await actions.configuration_changed()
    return pool_out(pool, list(dict.fromkeys(body.members)))


@router.get("/pools", response_model=Page[PoolOut])
async def list_pools(_: AdminDep, listings: ListingsDep, page: PageDep) -> Page[PoolOut]:
    """Pools, oldest first, a page at a time."""
    pools, members = await listings.pools(page.after(POOLS), page.fetch)
    return page.page(pools, POOLS, lambda p: pool_out(p, members[p.id]))


@router.get("/pools/{pool_id}", response_model=PoolOut, responses=problem_responses(404))
async def get_pool(pool_id: uuid.UUID, _: AdminDep, config: ConfigDep) -> PoolOut:
    return pool_out(*await config.get_pool(pool_id))


@router.patch("/pools/{pool_id}", response_model=PoolOut, responses=problem_responses(404, 409))
async def update_pool(
    pool_id: uuid.UUID,
    body: PoolPatch,
    _: AdminDep,
    config: ConfigDep,
    actions: ActionsDep,
    targets: TargetCheckDep,
) -> PoolOut:
    await targets.check(body)
    fields = body.model_dump(exclude_unset=True, exclude={"members"})
    if "strategy" in fields:
        fields["strategy"] = fields["strategy"].value
    if "slack_webhook_url" in fields:
        fields["slack_webhook_url"] = _url(body.slack_webhook_url)
    members = body.members if "members" in body.model_fields_set else None
    await config.update_pool(pool_id, fields, members)
    await actions.configuration_changed()
    return pool_out(*await config.get_pool(pool_id))


@router.delete("/pools/{pool_id}", status_code=204, responses=problem_responses(404))
async def delete_pool(pool_id: uuid.UUID, _: AdminDep, config: ConfigDep) -> Response:
    """Deletes the pool and the rules that point at it."""
    await config.delete_pool(pool_id)
    return Response(status_code=204)


def _url(url: object | None) -> str | None:
    return None if url is None else str(url)
