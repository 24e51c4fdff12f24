"""Walking a paginated list the way a client does: follow ``next`` until it is null."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from baton_shared.pagination import DEFAULT_PAGE_SIZE

Get = Callable[[str], Awaitable[httpx.Response]]


async def walk_list(get: Get, path: str, limit: int | None = None) -> list[list[dict[str, Any]]]:
    """Every page of a list, in order. Checks each answer is a 200, each page holds at
    most ``limit`` items, and the ``Link`` header names the same next page as ``next``."""
    pages: list[list[dict[str, Any]]] = []
    sep = "&" if "?" in path else "?"
    url: str | None = path if limit is None else f"{path}{sep}limit={limit}"
    while url is not None:
        response = await get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= (limit or DEFAULT_PAGE_SIZE)
        link = response.headers.get("link")
        assert link == (None if body["next"] is None else f'<{body["next"]}>; rel="next"')
        pages.append(body["items"])
        url = body["next"]
        assert len(pages) < 100, "the next links never end"
    return pages


def items(pages: list[list[dict[str, Any]]], key: str = "id") -> list[Any]:
    """``key`` of every item of every page, in order."""
    return [item[key] for page in pages for item in page]
