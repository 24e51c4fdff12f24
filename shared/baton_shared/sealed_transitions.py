"""Privacy mode at a consumer's boundary: the sealed ``email`` and ``traits`` of a
batch's transitions opened with one key lookup, never creating a key. A transition of
an erased lead (its key destroyed) opens to no email and no traits; every other item of
the batch passes as it is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from baton_shared.privacy import KeyStore, open_transition, sealed_subject
from baton_shared.schemas import Transition

T = TypeVar("T")


async def open_transitions(keys: KeyStore, items: list[T]) -> list[T]:
    """``items`` with each sealed transition opened (a new list)."""
    subjects = {sealed_subject(i.sealed) for i in items if isinstance(i, Transition) and i.sealed}
    if not subjects:
        return items
    found = await keys.keys(subjects, create=False)
    return [_opened(i, found) if isinstance(i, Transition) and i.sealed else i for i in items]


def _opened(transition: Transition, keys: Mapping[str, bytes]) -> Transition:
    assert transition.sealed is not None
    opened = open_transition(
        {"email": None, "traits": {}, "sealed": transition.sealed},
        keys.get(sealed_subject(transition.sealed)),
    )
    return transition.model_copy(
        update={"email": opened.get("email"), "traits": opened.get("traits") or {}, "sealed": None}
    )
