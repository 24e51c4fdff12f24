"""Cursors: a sort key survives the round trip exactly; anything else is a clear 422."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from fastapi import HTTPException
from pydantic import TypeAdapter

from baton_shared.pagination import decode_cursor, encode_cursor

KEY = TypeAdapter(tuple[datetime, uuid.UUID])


def test_a_cursor_gives_back_the_exact_sort_key() -> None:
    key = (datetime(2026, 1, 31, 9, 0, 0, 123456, tzinfo=UTC), uuid.uuid4())
    cursor = encode_cursor(key)
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor  # URL-safe as is
    assert decode_cursor(cursor, KEY) == key


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", encode_cursor(["x"]), ""])
def test_a_cursor_the_list_did_not_issue_is_a_422_naming_the_cursor(cursor: str) -> None:
    with pytest.raises(HTTPException) as refused:
        decode_cursor(cursor, KEY)
    assert refused.value.status_code == 422 and "cursor" in str(refused.value.detail)
