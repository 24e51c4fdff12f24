"""SLA policy: how long a rep has to touch a lead. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class SlaPolicy:
    """Windows from assignment to first touch: express SQLs are the most urgent."""

    express_sql: timedelta = timedelta(minutes=5)
    sql: timedelta = timedelta(hours=1)

    def deadline_at(self, assigned_at: datetime, express: bool) -> datetime:
        return assigned_at + (self.express_sql if express else self.sql)
