"""``/v1/webhooks/dead``: outbox messages that exhausted their retries, and their replay.
Admin only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status

from baton_router.api.deps import ERRORS, ActionsDep, AdminDep, ListingsDep
from baton_router.api.idempotency import IDEMPOTENT, IdempotentRoute
from baton_router.api.models.webhooks import DeadLetterOut
from baton_router.store.listing import DEAD_LETTERS
from baton_router.tables import OutboxRow
from baton_shared.pagination import Page, PageDep
from baton_shared.problems import problem_responses

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["webhooks"], route_class=IdempotentRoute)
MessageIdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="A dead letter's id")]


def dead_letter_out(row: OutboxRow) -> DeadLetterOut:
    return DeadLetterOut(
        id=row.id,
        kind=row.kind,
        message_id=row.message_id,
        rep_id=row.rep_id,
        target=row.target_url or row.topic,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
    )


@router.get("/webhooks/dead", response_model=Page[DeadLetterOut])
async def dead_letters(_: AdminDep, listings: ListingsDep, page: PageDep) -> Page[DeadLetterOut]:
    """Outbox messages that exhausted their retries (or hit a 410), newest first, a
    page at a time."""
    rows = await listings.dead_letters(page.after(DEAD_LETTERS), page.fetch)
    return page.page(rows, DEAD_LETTERS, dead_letter_out)


@router.post(
    "/webhooks/dead/{message_id}/replay",
    status_code=202,
    dependencies=[IDEMPOTENT],
    responses=problem_responses(404),
)
async def replay(message_id: MessageIdPath, _: AdminDep, actions: ActionsDep) -> dict[str, Any]:
    """Deliver a dead message again, with a fresh retry schedule."""
    row = await actions.replay(message_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead message {message_id}")
    return {"id": row.id, "message_id": row.message_id, "status": "pending"}
