"""The API's typed dependencies: who is calling, and the router parts a route may use.

Two kinds of caller, both ``Authorization: Bearer ...``: the **admin token**
(``BATON_ADMIN_TOKEN``), for everything; and a **rep token** (``POST
/v1/reps/{id}/token``), for that rep's own profile, availability, leads and activity.
Routes declare what they need (``AdminDep``, ``CallerDep``, ``ConfigDep``, ...) and
never reach into the service.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from baton_router.actions import RouterActions
from baton_router.service import RouterService
from baton_router.store.configuration import ConfigStore
from baton_router.store.listing import Listings
from baton_router.store.outbox import OutboxStore
from baton_shared.problems import problem_responses

REP_TOKEN_PREFIX = "rtok_"
ERRORS = problem_responses(
    401, 403, described={403: "A rep token asking for admin or another rep's data"}
)
bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin (``rep_id`` None) or one rep."""

    rep_id: uuid.UUID | None

    @property
    def is_admin(self) -> bool:
        return self.rep_id is None


def get_service(request: Request) -> RouterService:
    service: RouterService = request.app.state.service
    return service


ServiceDep = Annotated[RouterService, Depends(get_service)]


def get_config(service: ServiceDep) -> ConfigStore:
    return service.stores.config


def get_outbox(service: ServiceDep) -> OutboxStore:
    return service.stores.outbox


def get_listings(service: ServiceDep) -> Listings:
    return service.stores.listings


def get_actions(service: ServiceDep) -> RouterActions:
    if service.actions is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the router is starting")
    return service.actions


ConfigDep = Annotated[ConfigStore, Depends(get_config)]
OutboxDep = Annotated[OutboxStore, Depends(get_outbox)]
ListingsDep = Annotated[Listings, Depends(get_listings)]
ActionsDep = Annotated[RouterActions, Depends(get_actions)]


async def get_principal(
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    service: ServiceDep,
    config: ConfigDep,
) -> Principal:
    if creds is not None:
        admin_token = service.settings.admin_token
        if hmac.compare_digest(creds.credentials.encode(), admin_token.encode()):
            return Principal(None)
        if creds.credentials.startswith(REP_TOKEN_PREFIX):
            rep = await config.rep_for_token(creds.credentials)
            if rep is not None:
                return Principal(rep.id)
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "send 'Authorization: Bearer <BATON_ADMIN_TOKEN>' or a rep token (rtok_...)",
        headers={"WWW-Authenticate": "Bearer"},
    )


CallerDep = Annotated[Principal, Depends(get_principal)]


def get_admin(who: CallerDep) -> Principal:
    if not who.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs the admin token")
    return who


AdminDep = Annotated[Principal, Depends(get_admin)]
RepIdPath = Annotated[uuid.UUID, Path(description="Rep id")]


def check_self_or_admin(who: Principal, rep_id: uuid.UUID) -> None:
    """A rep token sees only its own rep."""
    if not who.is_admin and who.rep_id != rep_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a rep token sees only its own rep")
