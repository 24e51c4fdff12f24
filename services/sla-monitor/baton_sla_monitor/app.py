"""The SLA monitor's HTTP API: clocks by lead, reports, readiness, metrics.

Every ``/v1`` route needs ``Authorization: Bearer <BATON_ADMIN_TOKEN>``; every error is
a problem details document (``baton_shared.problems``).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from baton_shared.auth_limits import FailedAuthLimit, failed_auths
from baton_shared.body_limit import BodyLimit
from baton_shared.clock import utcnow
from baton_shared.http import ops_router
from baton_shared.instants import Instant
from baton_shared.pagination import Page, PageDep
from baton_shared.problems import (
    FieldProblem,
    ProblemError,
    body_too_large,
    install_problem_handlers,
    problem_responses,
)
from baton_sla_monitor.config import SlaSettings
from baton_sla_monitor.reporting.api import reporting_routes
from baton_sla_monitor.reports import (
    AT_RISK,
    BREACHED,
    LEAD_CLOCKS,
    ComplianceRow,
    GroupBy,
    Measure,
)
from baton_sla_monitor.service import SlaService
from baton_sla_monitor.tables import Clock

bearer = HTTPBearer(auto_error=False)

DEFAULT_WINDOW = timedelta(hours=24)


class ClockOut(BaseModel):
    id: str
    measure: Measure
    transition_id: str | None
    assignment_id: str | None
    lead_id: str
    rep_id: str | None
    team: str | None
    stage: str
    express: bool
    policy_version: str | None
    calendar: str | None
    window_seconds: float | None
    qualified_at: datetime
    started_at: datetime
    deadline_at: datetime
    next_fire_at: datetime | None
    warnings_sent: int
    status: str
    closed_at: datetime | None
    first_touch_at: datetime | None
    elapsed_seconds: float | None
    counted_seconds: float | None
    system_delay_seconds: float | None
    assign_target_seconds: float | None
    attempts_required: int | None = None
    attempts_made: int | None = None


class ComplianceOut(BaseModel):
    since: datetime
    until: datetime
    by: GroupBy
    rows: list[ComplianceRow]


Since = Annotated[Instant | None, Query(description="window start; default: until - 24 h")]
Until = Annotated[Instant | None, Query(description="window end; default: now")]
MeasureQuery = Annotated[
    Measure | None, Query(description="first_touch, assign or attempts; default: all")
]


def clock_out(clock: Clock) -> ClockOut:
    return ClockOut.model_validate(clock, from_attributes=True)


def window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """``[since, until)``; a window given backwards is read in order (the two instants
    bound it either way), and ``since == until`` is an empty window."""
    until = until or utcnow()
    if since is None:
        if until - datetime.min.replace(tzinfo=until.tzinfo) < DEFAULT_WINDOW:
            message = "too early: the default window (24 h back) would start before year 1"
            error = FieldProblem(path="query.until", rule="out_of_range", message=message)
            detail = f"invalid request: query.until {message}"
            raise ProblemError(422, detail, kind="validation-error", errors=[error])
        since = until - DEFAULT_WINDOW
    return min(since, until), max(since, until)


def create_app(settings: SlaSettings) -> FastAPI:
    service = SlaService(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    def require_admin(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
        given = creds.credentials.encode() if creds else b""
        if creds is None or not hmac.compare_digest(given, settings.admin_token.encode()):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "send 'Authorization: Bearer <BATON_ADMIN_TOKEN>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    api = APIRouter(
        prefix="/v1", dependencies=[Depends(require_admin)], responses=problem_responses(401)
    )

    reports = service.reports

    @api.get("/leads/{lead_id}/clocks", response_model=Page[ClockOut])
    async def lead_clocks(lead_id: str, page: PageDep) -> Page[ClockOut]:
        """Every clock of a lead, oldest first, a page at a time."""
        rows = await reports.lead_clocks(lead_id, page.after(LEAD_CLOCKS), page.fetch)
        return page.page(rows, LEAD_CLOCKS, clock_out)

    @api.get("/clocks/at-risk", response_model=Page[ClockOut])
    async def at_risk(page: PageDep, measure: MeasureQuery = None) -> Page[ClockOut]:
        """Open clocks that have had an ``at_risk`` warning, nearest deadline first:
        leads waiting for a first touch (``first_touch``) or for an assignment
        (``assign``), a page at a time."""
        rows = await reports.at_risk(page.fetch, measure, page.after(AT_RISK))
        return page.page(rows, AT_RISK, clock_out)

    @api.get("/clocks/breached", response_model=Page[ClockOut])
    async def breached(
        page: PageDep,
        since: Since = None,
        until: Until = None,
        measure: MeasureQuery = None,
    ) -> Page[ClockOut]:
        """Clocks whose deadline passed in the window without a touch (``first_touch``)
        or an assignment (``assign``), newest first, a page at a time (the next link
        keeps the window, so "now" does not move under the pages)."""
        start, end = window(since, until)
        rows = await reports.breached(start, end, page.fetch, measure, page.after(BREACHED))
        pinned = {"since": start.isoformat(), "until": end.isoformat()}
        return page.page(rows, BREACHED, clock_out, **pinned)

    @api.get("/compliance", response_model=ComplianceOut)
    async def compliance(
        by: Annotated[GroupBy, Query(description="rep or team")] = "rep",
        since: Since = None,
        until: Until = None,
    ) -> ComplianceOut:
        """Per rep or team, over clocks started in the window: met, breached, the
        compliance ratio, and speed-to-lead and time-to-assign percentiles."""
        start, end = window(since, until)
        rows = await service.reports.compliance(start, end, by)
        return ComplianceOut(since=start, until=end, by=by, rows=rows)

    api.include_router(reporting_routes(service.reporting.store, settings.mql_target_per_day))

    app = FastAPI(title="Baton SLA monitor", version="0.2.0", lifespan=lifespan)
    app.state.service = service
    app.include_router(ops_router(service.readiness, service.supervisor))
    app.include_router(api)
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, refuse=body_too_large)
    app.add_middleware(FailedAuthLimit, failures=failed_auths(settings))
    return app
