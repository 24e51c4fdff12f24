"""``/v1/nurture-tracks``: where MQLs are enrolled, and the SDR pool that works them.
Admin only."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from baton_router.api.deps import ERRORS, AdminDep, ConfigDep, ListingsDep
from baton_router.api.idempotency import IDEMPOTENT, IdempotentRoute
from baton_router.api.models.nurture_tracks import TrackCreated, TrackIn, TrackOut
from baton_router.api.targets import TargetCheckDep
from baton_router.signing import new_secret
from baton_router.store.listing import TRACKS
from baton_shared.pagination import Page, PageDep
from baton_shared.problems import problem_responses

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["routing"], route_class=IdempotentRoute)


@router.post(
    "/nurture-tracks",
    dependencies=[IDEMPOTENT],
    status_code=201,
    response_model=TrackCreated,
    responses=problem_responses(409),
)
async def create_track(
    body: TrackIn, _: AdminDep, config: ConfigDep, targets: TargetCheckDep
) -> TrackCreated:
    """Where MQLs are enrolled: the first track whose conditions match gets a signed
    ``lead.nurture`` webhook; with ``sdr_pool_id``, an SDR of that pool also gets a
    ``lead.sdr_task`` (queued until one is available)."""
    await targets.check(body)
    fields = body.model_dump(mode="json") | {"sdr_pool_id": body.sdr_pool_id}
    secret = new_secret()  # stored sealed: the answer is the only place it is in clear
    track = await config.create_track(fields | {"webhook_secret": secret})
    out = TrackOut.model_validate(track, from_attributes=True)
    return TrackCreated(**out.model_dump(), webhook_secret=secret)


@router.get("/nurture-tracks", response_model=Page[TrackOut])
async def list_tracks(_: AdminDep, listings: ListingsDep, page: PageDep) -> Page[TrackOut]:
    """Nurture tracks in the order they are tried, a page at a time."""
    rows = await listings.tracks(page.after(TRACKS), page.fetch)
    return page.page(rows, TRACKS, lambda t: TrackOut.model_validate(t, from_attributes=True))


@router.delete("/nurture-tracks/{track_id}", status_code=204, responses=problem_responses(404))
async def delete_track(track_id: uuid.UUID, _: AdminDep, config: ConfigDep) -> Response:
    await config.delete_track(track_id)
    return Response(status_code=204)
