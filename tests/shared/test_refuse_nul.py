"""A record PostgreSQL cannot store is poison, not a batch retried forever."""

from __future__ import annotations

import orjson
import pytest

from baton_shared.consumer import refuse_nul


@pytest.mark.parametrize(
    "text",
    ["CTO\x00", "\x00", "a\\\x00", "\\\\\x00"],
    ids=["end", "alone", "after-bs", "after-2bs"],
)
def test_a_nul_character_anywhere_is_refused(text: str) -> None:
    raw = orjson.dumps({"traits": {"title": text}, "n": [1, {"deep": text}]})
    with pytest.raises(ValueError, match="NUL character"):
        refuse_nul(raw)


@pytest.mark.parametrize("text", ["plain", "a\\u0000b", "\\\\u0000", "u0000"])
def test_the_text_backslash_u0000_is_not_a_nul(text: str) -> None:
    refuse_nul(orjson.dumps({"title": text}))  # the six characters themselves are fine
    refuse_nul(None)
