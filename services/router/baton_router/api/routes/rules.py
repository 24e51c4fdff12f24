"""``/v1/rules``: routing rules, tried in position order; the first whose conditions all
match names the pool. Admin only; a change drains the queue at once."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from baton_router.api.deps import ERRORS, ActionsDep, AdminDep, ConfigDep, ListingsDep
from baton_router.api.idempotency import IDEMPOTENT, IdempotentRoute
from baton_router.api.models.rules import RuleIn, RuleOut, RulePatch
from baton_router.store.listing import RULES
from baton_router.tables import RoutingRule
from baton_shared.pagination import Page, PageDep
from baton_shared.problems import problem_responses

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["routing"], route_class=IdempotentRoute)


@router.post(
    "/rules",
    dependencies=[IDEMPOTENT],
    status_code=201,
    response_model=RuleOut,
    responses=problem_responses(409),
)
async def create_rule(body: RuleIn, _: AdminDep, config: ConfigDep, actions: ActionsDep) -> RuleOut:
    rule = await config.create_rule(body.model_dump(mode="json") | {"pool_id": body.pool_id})
    await actions.configuration_changed()
    return RuleOut.model_validate(rule, from_attributes=True)


@router.get("/rules", response_model=Page[RuleOut])
async def list_rules(_: AdminDep, listings: ListingsDep, page: PageDep) -> Page[RuleOut]:
    """Rules in the order they are tried, a page at a time."""
    rows = await listings.rules(page.after(RULES), page.fetch)
    return page.page(rows, RULES, rule_out)


def rule_out(rule: RoutingRule) -> RuleOut:
    return RuleOut.model_validate(rule, from_attributes=True)


@router.get("/rules/{rule_id}", response_model=RuleOut, responses=problem_responses(404))
async def get_rule(rule_id: uuid.UUID, _: AdminDep, config: ConfigDep) -> RuleOut:
    return RuleOut.model_validate(await config.get_rule(rule_id), from_attributes=True)


@router.patch("/rules/{rule_id}", response_model=RuleOut, responses=problem_responses(404, 409))
async def update_rule(
    rule_id: uuid.UUID, body: RulePatch, _: AdminDep, config: ConfigDep, actions: ActionsDep
) -> RuleOut:
    fields = body.model_dump(exclude_unset=True, mode="json")
    if "pool_id" in fields:
        fields["pool_id"] = body.pool_id
    rule = await config.update_rule(rule_id, fields)
    await actions.configuration_changed()
    return RuleOut.model_validate(rule, from_attributes=True)


@router.delete("/rules/{rule_id}", status_code=204, responses=problem_responses(404))
async def delete_rule(rule_id: uuid.UUID, _: AdminDep, config: ConfigDep) -> Response:
    await config.delete_rule(rule_id)
    return Response(status_code=204)
