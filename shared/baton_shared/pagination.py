"""Cursor pagination for every list endpoint of Baton's APIs.

A list is read in a stable order over a unique key (``ORDER BY created_at, id``). A page
holds at most ``limit`` items (default :data:`DEFAULT_PAGE_SIZE`, at most
:data:`MAX_PAGE_SIZE`; more is a 422); when more follow, the response's ``next`` (and an
RFC 8288 ``Link: <...>; rel="next"`` header) is the URL of the next page: the same
query with ``cursor`` set to the last item's sort key, base64url-encoded JSON. The
client treats the cursor as opaque. Reads are keyset queries (:class:`SortKey`), so a
page costs one index range scan however deep it is, and an item added or removed between
pages neither repeats nor skips the others.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy import Select, literal, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K")
Q = TypeVar("Q", bound=Select[Any])


class Page(BaseModel, Generic[T]):
    """One page of a list, and where the next one is."""

    items: list[T]
    next: str | None = Field(
        description="URL (path and query) of the next page; null on the last page"
    )


def encode_cursor(key: Sequence[Any]) -> str:
    """The opaque cursor for a sort key (JSON of its values, base64url, no padding)."""
    raw = orjson.dumps(list(key), default=str)  # default: UUIDs as asyncpg returns them
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, key_type: TypeAdapter[K]) -> K:
    """The sort key in ``cursor``; a cursor this list did not issue is a 422."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return key_type.validate_python(orjson.loads(raw))
    except (binascii.Error, ValueError, ValidationError):
        raise HTTPException(
            422,
            "cursor: not a cursor this list issued; use the 'next' link of the previous "
            "page, or leave cursor out to start from the first page",
        ) from None


class SortKey:
    """A list's order: columns that together are unique, all ascending or all
    descending. Reads the page after a cursor's key (a keyset query) and makes the key
    of a row."""

    def __init__(self, *columns: InstrumentedAttribute[Any], descending: bool = False):
        self.columns, self.descending = columns, descending
        types = tuple(c.type.python_type for c in columns)
        self.key_type: TypeAdapter[tuple[Any, ...]] = TypeAdapter(tuple[types])  # type: ignore[valid-type]

    def of(self, row: Any) -> tuple[Any, ...]:
        return tuple(getattr(row, c.key) for c in self.columns)

    def apply(self, query: Q, after: Sequence[Any] | None, limit: int) -> Q:
        """``query`` in this order: at most ``limit`` rows after the key ``after``
        (None: from the start)."""
        if after is not None:
            row = tuple_(*self.columns)
            typed = zip(after, self.columns, strict=True)
            bound = tuple_(*(literal(v, c.type) for v, c in typed))
            query = query.where(row < bound if self.descending else row > bound)
        order = [c.desc() for c in self.columns] if self.descending else self.columns
        return query.order_by(*order).limit(limit)

    async def read(
        self,
        sessions: async_sessionmaker[AsyncSession],
        query: Select[tuple[T]],
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[T]:
        """The rows of :meth:`apply`."""
        async with sessions() as session:
            return list((await session.scalars(self.apply(query, after, limit))).all())


@dataclass(frozen=True)
class PageRequest:
    """What a list endpoint was asked for: the page size, the cursor, the URL."""

    limit: int
    cursor: str | None
    request: Request
    response: Response

    def after(self, order: SortKey) -> tuple[Any, ...] | None:
        """The sort key to start after (None: the first page)."""
        return None if self.cursor is None else decode_cursor(self.cursor, order.key_type)

    @property
    def fetch(self) -> int:
        """Rows to read: one more than a page, so the page knows whether another follows."""
        return self.limit + 1

    def page(
        self,
        rows: Sequence[R],
        order: SortKey,
        item: Callable[[R], T],
        **pinned: str,
    ) -> Page[T]:
        """The page of ``rows`` (``fetch`` rows read with :meth:`SortKey.apply`; the
        extra one says another page follows). ``pinned`` query values go into the next link (a
        window that defaulted to "now" must not move between pages)."""
        more = len(rows) > self.limit
        rows = rows[: self.limit]
        next_url = None
        if more and rows:
            url = self.request.url.include_query_params(
                **pinned, limit=self.limit, cursor=encode_cursor(order.of(rows[-1]))
            )
            next_url = f"{url.path}?{url.query}"
            self.response.headers["Link"] = f'<{next_url}>; rel="next"'
        return Page[Any](items=[item(r) for r in rows], next=next_url)


def page_request(
    request: Request,
    response: Response,
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_PAGE_SIZE, description=f"Items per page, at most {MAX_PAGE_SIZE}"),
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(max_length=1000, description="Opaque; from the previous page's 'next' link"),
    ] = None,
) -> PageRequest:
    return PageRequest(limit, cursor, request, response)


PageDep = Annotated[PageRequest, Depends(page_request)]
