"""``/v1/privacy``: erase a person, and follow the erasure. Admin only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status

from baton_router.api.deps import ERRORS, AdminDep, ServiceDep
from baton_router.api.models.privacy import ErasureAccepted, ErasureIn, ErasureStatus
from baton_router.erasure import Erasures
from baton_shared.problems import problem_responses

router = APIRouter(prefix="/v1/privacy", responses=ERRORS, tags=["privacy"])
ErasureIdPath = Annotated[uuid.UUID, Path(description="An erasure's id")]


def get_erasures(service: ServiceDep) -> Erasures:
    if service.erasures is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the router is starting")
    return service.erasures


ErasuresDep = Annotated[Erasures, Depends(get_erasures)]


@router.post(
    "/erase",
    status_code=202,
    response_model=ErasureAccepted,
    responses=problem_responses(422, 503),
)
async def erase(body: ErasureIn, who: AdminDep, erasures: ErasuresDep) -> ErasureAccepted:
    """Erase a person: their data keys are destroyed at once (privacy mode), then every
    service deletes or scrubs its rows of every lead linked to the ids given. Follow it
    at ``status_url``; it is complete when every step is done."""
    erasure_id = await erasures.request(body.identities(), body.requested_by)
    url = f"/v1/privacy/erasures/{erasure_id}"
    return ErasureAccepted(erasure_id=uuid.UUID(erasure_id), status_url=url)


@router.get(
    "/erasures/{erasure_id}", response_model=ErasureStatus, responses=problem_responses(404)
)
async def erasure(erasure_id: ErasureIdPath, _: AdminDep, erasures: ErasuresDep) -> ErasureStatus:
    """An erasure: who asked and when, the pseudonyms erased, each step's time."""
    found = await erasures.status(erasure_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no erasure {erasure_id}")
    return ErasureStatus.model_validate(found)
