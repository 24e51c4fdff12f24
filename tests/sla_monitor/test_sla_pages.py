"""The SLA monitor's lists a page at a time, on a running monitor (real Kafka and
PostgreSQL): a lead's clocks, at-risk and breached clocks, each seen exactly once in
order by following ``next``; a page above the maximum or a foreign cursor is a 422."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from baton_shared.pagination import MAX_PAGE_SIZE
from baton_sla_monitor.app import create_app
from tests.support.pages import items, walk_list

pytestmark = pytest.mark.integration

ADMIN = "sla-pages-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
LEAD = "lead-with-many-clocks"
INSERT = text(
    """
    INSERT INTO sla.clocks (id, measure, lead_id, stage, express, qualified_at, started_at,
      deadline_at, warn_ats, warn_fractions, warnings_sent, status)
    SELECT :prefix || g, 'first_touch', :lead, 'sql', false, CAST(:at AS timestamptz), :at,
      -- pairs of clocks share a deadline: the id orders them
      CAST(:at AS timestamptz) + make_interval(secs => g / 2), '{}', '{}', :warnings, :status
    FROM generate_series(1, :n) AS g
    """
)


@pytest.fixture
async def http(settings_for) -> AsyncIterator[httpx.AsyncClient]:
    """A monitor's API, with 12 at-risk clocks and 25 breached ones on one lead."""
    app = create_app(settings_for(BATON_ADMIN_TOKEN=ADMIN))
    service = app.state.service
    await service.start()
    try:
        at = datetime.now(UTC) - timedelta(minutes=30)
        async with service.engine.begin() as conn:
            for prefix, status, warnings, n in (("r", "open", 1, 12), ("b", "breached", 2, 25)):
                params = {"prefix": prefix, "status": status, "warnings": warnings, "n": n}
                await conn.execute(INSERT, params | {"lead": LEAD, "at": at})
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sla") as client:
            yield client
    finally:
        await service.stop()


def get(http: httpx.AsyncClient):  # type: ignore[no-untyped-def]
    return lambda url: http.get(url, headers=AUTH)


async def test_clock_lists_page_through_every_clock_once_in_order(http) -> None:
    at_risk = await walk_list(get(http), "/v1/clocks/at-risk", limit=5)
    assert [len(p) for p in at_risk] == [5, 5, 2]
    deadlines = items(at_risk, "deadline_at")
    assert deadlines == sorted(deadlines) and len(set(items(at_risk))) == 12

    breached = await walk_list(get(http), "/v1/clocks/breached", limit=10)
    assert [len(p) for p in breached] == [10, 10, 5]
    pairs = [(c["deadline_at"], c["id"]) for page in breached for c in page]
    assert pairs == sorted(pairs, reverse=True) and len(set(pairs)) == 25

    mine = await walk_list(get(http), f"/v1/leads/{LEAD}/clocks", limit=10)
    assert sorted(items(mine)) == sorted(
        {f"r{i}" for i in range(1, 13)} | {f"b{i}" for i in range(1, 26)}
    )


async def test_the_breached_windows_next_link_keeps_its_window(http) -> None:
    first = (await http.get("/v1/clocks/breached?limit=3", headers=AUTH)).json()
    assert "since=" in first["next"] and "until=" in first["next"]


async def test_a_page_above_the_maximum_or_a_foreign_cursor_is_refused(http) -> None:
    ok = await http.get(f"/v1/clocks/at-risk?limit={MAX_PAGE_SIZE}", headers=AUTH)
    assert ok.status_code == 200
    too_many = await http.get(f"/v1/clocks/at-risk?limit={MAX_PAGE_SIZE + 1}", headers=AUTH)
    assert too_many.status_code == 422 and "limit" in too_many.text
    foreign = await http.get("/v1/clocks/breached?cursor=WyJ4Il0", headers=AUTH)  # ["x"]
    assert foreign.status_code == 422 and "cursor" in foreign.text
