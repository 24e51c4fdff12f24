"""Routing choice. Pure: the candidates and their history in, a rep id out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Candidate:
    """A rep who could take the lead, with what fairness needs to know."""

    rep_id: uuid.UUID
    last_assigned_at: datetime | None
    created_at: datetime


def assign_round_robin(candidates: list[Candidate]) -> Candidate | None:
    """The rep who has waited longest since their last lead (never-assigned reps first,
    oldest first). Driven by stored timestamps, so it stays fair across restarts and
    across several router instances."""
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda c: (
            c.last_assigned_at is not None,
            c.last_assigned_at or c.created_at,
            c.created_at,
            str(c.rep_id),
        ),
    )
