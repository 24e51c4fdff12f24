"""``/v1/accounts``: which rep owns a company domain; its leads go to that rep first.
Admin only."""

from __future__ import annotations

from fastapi import APIRouter, Response

from baton_router.api.deps import ERRORS, AdminDep, ConfigDep, ListingsDep
from baton_router.api.models.accounts import AccountIn, AccountOut, check_domain
from baton_router.store.configuration import InvalidReference
from baton_router.store.listing import ACCOUNTS
from baton_shared.pagination import Page, PageDep

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


@router.get("/accounts", response_model=Page[AccountOut])
async def list_accounts(_: AdminDep, listings: ListingsDep, page: PageDep) -> Page[AccountOut]:
    """Accounts by domain, a page at a time."""
    rows = await listings.accounts(page.after(ACCOUNTS), page.fetch)
    return page.page(rows, ACCOUNTS, lambda a: AccountOut(domain=a.domain, rep_id=a.rep_id))


@router.delete("/accounts/{domain}", status_code=204)
async def delete_account(domain: str, _: AdminDep, config: ConfigDep) -> Response:
    await config.delete_account(domain.strip().lower())
    return Response(status_code=204)
