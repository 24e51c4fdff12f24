"""``/v1/accounts``: which rep owns a company domain; its leads go to that rep first.
Admin only."""

from __future__ import annotations

from fastapi import APIRouter, Response

from baton_router.api.deps import ERRORS, AdminDep, ConfigDep
from baton_router.api.models.accounts import AccountIn, AccountOut, check_domain
from baton_router.store.configuration import InvalidReference

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["routing"])


@router.put("/accounts/{domain}", response_model=AccountOut)
async def put_account(domain: str, body: AccountIn, _: AdminDep, config: ConfigDep) -> AccountOut:
    """Leads from ``domain`` (their email's or company's) go to this rep first."""
    try:
        clean = check_domain(domain)
    except ValueError as exc:
        raise InvalidReference(("path", "domain"), str(exc)) from None
    account = await config.put_account(clean, body.rep_id)
    return AccountOut(domain=account.domain, rep_id=account.rep_id)


@router.get("/accounts", response_model=list[AccountOut])
async def list_accounts(_: AdminDep, config: ConfigDep) -> list[AccountOut]:
    return [AccountOut(domain=a.domain, rep_id=a.rep_id) for a in await config.list_accounts()]


@router.delete("/accounts/{domain}", status_code=204)
async def delete_account(domain: str, _: AdminDep, config: ConfigDep) -> Response:
    await config.delete_account(domain.strip().lower())
    return Response(status_code=204)
