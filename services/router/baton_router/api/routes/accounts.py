"""``/v1/accounts``: which rep owns a company domain; its leads go to that rep first.
Admin only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from baton_router.api.deps import ERRORS, AdminDep, ConfigDep, ListingsDep
from baton_router.api.models.accounts import AccountIn, AccountOut, check_domain
from baton_router.store.listing import ACCOUNTS
from baton_shared.pagination import Page, PageDep
from baton_shared.problems import FieldProblem, ProblemError, problem_responses

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["routing"])
DomainPath = Annotated[
    str,
    Path(
        description="A company domain, e.g. acme.com (case and a leading www. are ignored)",
        pattern=r"^([A-Za-z0-9-]{1,63}\.)+[A-Za-z0-9-]{1,63}\.?$",
        max_length=253,
    ),
]


@router.put("/accounts/{domain}", response_model=AccountOut, responses=problem_responses(409))
async def put_account(
    domain: DomainPath, body: AccountIn, _: AdminDep, config: ConfigDep
) -> AccountOut:
    """Leads from ``domain`` (their email's or company's) go to this rep first."""
    try:
        clean = check_domain(domain)
    except ValueError as exc:
        error = FieldProblem(path="path.domain", rule="company_domain", message=str(exc))
        raise ProblemError(422, str(exc), "validation-error", [error]) from None
    account = await config.put_account(clean, body.rep_id)
    return AccountOut(domain=account.domain, rep_id=account.rep_id)


@router.get("/accounts", response_model=Page[AccountOut])
async def list_accounts(_: AdminDep, listings: ListingsDep, page: PageDep) -> Page[AccountOut]:
    """Accounts by domain, a page at a time."""
    rows = await listings.accounts(page.after(ACCOUNTS), page.fetch)
    return page.page(rows, ACCOUNTS, lambda a: AccountOut(domain=a.domain, rep_id=a.rep_id))


@router.delete("/accounts/{domain}", status_code=204, responses=problem_responses(404))
async def delete_account(domain: DomainPath, _: AdminDep, config: ConfigDep) -> Response:
    await config.delete_account(domain.strip().lower())
    return Response(status_code=204)
