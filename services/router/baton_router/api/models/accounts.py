"""Account bodies: a company domain and the rep who owns it."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from baton_router.api.models.common import Strict
from baton_router.routing import normalise_domain


class AccountIn(Strict):
    rep_id: uuid.UUID


class AccountOut(BaseModel):
    domain: str
    rep_id: uuid.UUID


def check_domain(raw: str) -> str:
    domain = normalise_domain(raw)
    labels = domain.split(".")
    if (
        len(labels) < 2
        or any(not label or len(label) > 63 for label in labels)
        or any(not c.isalnum() and c not in "-." for c in domain)
    ):
        raise ValueError(f"{raw!r} is not a company domain like 'acme.com'")
    return domain
