"""``/v1/privacy``: erase a person, and follow the erasure. Admin only."""

from __future__ import annotations

import uuid
from typing import Annotated

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, HTTPException, Path, status

from baton_router.api.deps import ERRORS, AdminDep, ServiceDep
from baton_router.api.models.privacy import ErasureAccepted, ErasureIn, ErasureStatus
from baton_router.erasure import Erasures
from baton_shared.privacy import KeyStoreUnavailable
from baton_shared.problems import ProblemError, problem_responses

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
async def erase(body: ErasureIn, _: AdminDep, erasures: ErasuresDep) -> ErasureAccepted:
    """Erase a person: their data keys are destroyed at once (privacy mode), then every
    service deletes or scrubs its rows of every lead linked to the ids given. Follow it
    at ``status_url``; it is complete when every step is done."""
    try:
        erasure_id = await erasures.request(body.identities(), body.requested_by)
    except (KeyStoreUnavailable, KafkaError) as exc:
        raise _unavailable(exc) from None
    url = f"/v1/privacy/erasures/{erasure_id}"
    return ErasureAccepted(erasure_id=uuid.UUID(erasure_id), status_url=url)


@router.get(
    "/erasures/{erasure_id}", response_model=ErasureStatus, responses=problem_responses(404, 503)
)
async def erasure(erasure_id: ErasureIdPath, _: AdminDep, erasures: ErasuresDep) -> ErasureStatus:
    """An erasure: who asked and when, the pseudonyms erased, each step's time."""
    try:
        found = await erasures.status(erasure_id)
    except KeyStoreUnavailable as exc:
        raise _unavailable(exc) from None
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no erasure {erasure_id}")
    return ErasureStatus.model_validate(found)


def _unavailable(exc: Exception) -> ProblemError:
    """PostgreSQL (the erasure record, the keys) or Kafka did not answer: try again. A
    request that recorded its erasure before Kafka failed shows it as never resolved;
    the retry makes a new one."""
    what = "the key store" if isinstance(exc, KeyStoreUnavailable) else "Kafka"
    return ProblemError(503, f"{what} unavailable; try again", headers={"Retry-After": "5"})
