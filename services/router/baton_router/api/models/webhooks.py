"""Webhook dead letters as the operator sees them."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class DeadLetterOut(BaseModel):
    id: int
    kind: str
    message_id: str
    rep_id: uuid.UUID | None
    target: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
