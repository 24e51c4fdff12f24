"""The record of every erasure, in ``privacy.erasures``: who asked, when, for which
pseudonyms (never the data erased), and when each service finished its step.

An erasure is complete once every service in :data:`ERASURE_STEPS` has finished.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

ERASURE_STEPS = ("scorer", "router", "sla-monitor")

_COLUMNS = "erasure_id, subjects, requested_by, requested_at, steps, completed_at"


@dataclass(frozen=True)
class Erasure:
    erasure_id: str
    subjects: list[str]
    requested_by: str
    requested_at: datetime
    steps: dict[str, str]  # service -> when it finished (ISO 8601)
    completed_at: datetime | None

    @property
    def complete(self) -> bool:
        return self.completed_at is not None


def erasure_of(row: Any) -> Erasure:
    steps = row["steps"]
    return Erasure(
        erasure_id=str(row["erasure_id"]),
        subjects=list(row["subjects"]),
        requested_by=row["requested_by"],
        requested_at=row["requested_at"],
        steps=orjson.loads(steps) if isinstance(steps, str | bytes) else dict(steps),
        completed_at=row["completed_at"],
    )


INSERT = f"""
INSERT INTO privacy.erasures (erasure_id, subjects, requested_by, requested_at)
VALUES ($1, $2, $3, coalesce($4, now()))
ON CONFLICT (erasure_id) DO UPDATE SET erasure_id = EXCLUDED.erasure_id
RETURNING {_COLUMNS}
"""

# A step finishes once (the first time is kept); the erasure completes with the last.
FINISH_STEP = f"""
UPDATE privacy.erasures
SET steps = jsonb_build_object($2::text, to_jsonb(now())) || steps,
    completed_at = CASE
        WHEN completed_at IS NOT NULL THEN completed_at
        WHEN (jsonb_build_object($2::text, true) || steps) ?& $3::text[] THEN now()
    END
WHERE erasure_id = $1
RETURNING {_COLUMNS}
"""

SELECT = f"SELECT {_COLUMNS} FROM privacy.erasures WHERE erasure_id = $1"


def erasure_uuid(erasure_id: str | uuid.UUID | None) -> uuid.UUID:
    """A new id, or ``erasure_id`` as a UUID (ValueError when it is not one)."""
    if erasure_id is None:
        return uuid.uuid4()
    return erasure_id if isinstance(erasure_id, uuid.UUID) else uuid.UUID(str(erasure_id))
