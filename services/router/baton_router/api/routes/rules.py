"""``/v1/rules``: routing rules, tried in position order; the first whose conditions all
match names the pool. Admin only; a change drains the queue at once."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from baton_router.api.deps import ERRORS, ActionsDep, AdminDep, ConfigDep
from baton_router.api.models.rules import RuleIn, RuleOut, RulePatch
from baton_router.store.configuration import InvalidReference

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["routing"])


@router.post("/rules", status_code=201, response_model=RuleOut)
async def create_rule(body: RuleIn, _: AdminDep, config: ConfigDep, actions: ActionsDep) -> RuleOut:
    rule = await config.create_rule(body.model_dump(mode="json") | {"pool_id": body.pool_id})
    await actions.configuration_changed()
    return RuleOut.model_validate(rule, from_attributes=True)


@router.get("/rules", response_model=list[RuleOut])
async def list_rules(_: AdminDep, config: ConfigDep) -> list[RuleOut]:
    return [RuleOut.model_validate(r, from_attributes=True) for r in await config.list_rules()]


@router.get("/rules/{rule_id}", response_model=RuleOut)
async def get_rule(rule_id: uuid.UUID, _: AdminDep, config: ConfigDep) -> RuleOut:
    return RuleOut.model_validate(await config.get_rule(rule_id), from_attributes=True)


@router.patch("/rules/{rule_id}", response_model=RuleOut)
async def update_rule(
    rule_id: uuid.UUID, body: RulePatch, _: AdminDep, config: ConfigDep, actions: ActionsDep
) -> RuleOut:
    fields = body.model_dump(exclude_unset=True, mode="json")
    for key, value in fields.items():
        if value is None:
            raise InvalidReference((key,), "may not be null")
    if "pool_id" in fields:
        fields["pool_id"] = body.pool_id
    rule = await config.update_rule(rule_id, fields)
    await actions.configuration_changed()
    return RuleOut.model_validate(rule, from_attributes=True)


@router.delete("/rules/{rule_id}", status_code=204)
async def delete_rule(rule_id: uuid.UUID, _: AdminDep, config: ConfigDep) -> Response:
    await config.delete_rule(rule_id)
    return Response(status_code=204)
