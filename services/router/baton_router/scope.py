"""Which assignment a rep's token may act on: only the rep's **current** one.

A lead that moved on (re-assigned after an SLA breach, escalated to a manager, its SDR
task superseded) is no longer the previous assignee's to mark contacted, reject or
backdate a touch on; and an ``assignment_id`` a rep names must be its own current one.
Pure: the API passes the lead's assignments in and maps the refusals to problems.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol, TypeVar

#: Statuses in which an assignment was taken from its rep: the rep may no longer act.
MOVED_ON = frozenset({"taken_back", "escalated", "superseded"})


class AssignmentLike(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def rep_id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...


A = TypeVar("A", bound=AssignmentLike)


class OutOfScope(Exception):
    """A rep acting on what is not (or no longer) theirs; ``status`` 403 or 409, ``path``
    the body field at fault (if one is)."""

    def __init__(self, status: int, detail: str, path: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.path = status, detail, path


def acting_assignment(
    current: A, rep_id: uuid.UUID, assignment_id: uuid.UUID | None, mine: Sequence[A]
) -> A:
    """The assignment ``rep_id`` acts on: ``current`` (the lead's latest), when it is the
    rep's and was not taken away. ``mine``: the rep's assignments of this lead.
    :class:`OutOfScope` otherwise: 403 for an ``assignment_id`` that is not one of the
    rep's, 409 when the lead moved on or the id is an older one of the rep's."""
    if assignment_id is not None and all(a.id != assignment_id for a in mine):
        raise OutOfScope(
            403,
            f"assignment {assignment_id} is not one of yours on this lead",
            "body.assignment_id",
        )
    if current.rep_id != rep_id:
        raise OutOfScope(409, "the lead was re-assigned to someone else: it is no longer yours")
    if current.status in MOVED_ON:
        taken = current.status.replace("_", " ")
        raise OutOfScope(409, f"your assignment was {taken}: the lead is no longer yours")
    if assignment_id is not None and assignment_id != current.id:
        raise OutOfScope(
            409,
            f"assignment {assignment_id} is no longer current; act on {current.id}",
            "body.assignment_id",
        )
    return current
