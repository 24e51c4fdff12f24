"""``/v1/webhooks/dead``: outbox messages that exhausted their retries, and their replay.
Admin only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status

from baton_router.api.deps import ERRORS, ActionsDep, AdminDep, OutboxDep
from baton_router.api.models.webhooks import DeadLetterOut

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["webhooks"])


@router.get("/webhooks/dead", response_model=list[DeadLetterOut])
async def dead_letters(_: AdminDep, outbox: OutboxDep) -> list[DeadLetterOut]:
    """Outbox messages that exhausted their retries (or hit a 410), newest first."""
    return [
        DeadLetterOut(
            id=row.id,
            kind=row.kind,
            message_id=row.message_id,
            rep_id=row.rep_id,
            target=row.target_url or row.topic,
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=row.created_at,
        )
        for row in await outbox.dead_letters()
    ]


@router.post("/webhooks/dead/{message_id}/replay", status_code=202)
async def replay(message_id: int, _: AdminDep, actions: ActionsDep) -> dict[str, Any]:
    """Deliver a dead message again, with a fresh retry schedule."""
    row = await actions.replay(message_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead message {message_id}")
    return {"id": row.id, "message_id": row.message_id, "status": "pending"}
