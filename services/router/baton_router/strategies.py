"""How a pool picks one of its eligible reps. Pure: candidates with their counters in,
a choice out; the caller stores the counters the choice changed.

- ``assign_round_robin``: the rep whose last turn is oldest. Turns are numbers from one
  database sequence, not wall-clock times, so the order is the same across restarts,
  across router instances and whatever their clocks say. A rep back from holiday has an
  old turn: they get the next lead, then go to the back of the line like everyone else
  (no catch-up flood).
- ``assign_smooth_weighted``: nginx's smooth weighted round robin. Each round every
  candidate's ``current`` grows by its weight, the largest wins and pays back the total.
  Over any window of W = sum(weights) leads each rep gets exactly its weight, spread out
  (weights 5,1,1 give a a b a c a a, not a a a a a b c).
- ``assign_least_loaded``: the rep with the most spare capacity (fewest open leads
  relative to capacity), ties by round-robin turn. Reps at capacity are never chosen.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Strategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    WEIGHTED = "weighted"
    LEAST_LOADED = "least_loaded"


@dataclass(frozen=True)
class Candidate:
    """A rep who could take the lead, with what fairness needs to know."""

    rep_id: uuid.UUID
    last_turn: int | None = None  # sequence number of their last assignment
    weight: int = 1
    current: float = 0.0  # smooth weighted round-robin state in this pool
    open_leads: int = 0
    capacity: int | None = None  # None: unlimited


@dataclass(frozen=True)
class Choice:
    rep_id: uuid.UUID
    current: dict[uuid.UUID, float]  # new weighted-round-robin state of every candidate


def _turn_key(c: Candidate) -> tuple[bool, int, str]:
    return (c.last_turn is not None, c.last_turn or 0, str(c.rep_id))


def has_capacity(c: Candidate) -> bool:
    return c.capacity is None or c.open_leads < c.capacity


def assign_round_robin(candidates: list[Candidate]) -> Candidate | None:
    """Never-assigned reps first (by id), then whoever's last turn is oldest."""
    if not candidates:
        return None
    return min(candidates, key=_turn_key)


def assign_smooth_weighted(candidates: list[Candidate]) -> Choice | None:
    if not candidates:
        return None
    total = sum(c.weight for c in candidates)
    current = {c.rep_id: c.current + c.weight for c in candidates}
    best = max(candidates, key=lambda c: (current[c.rep_id], -_rank(c)))
    current[best.rep_id] -= total
    return Choice(best.rep_id, current)


def _rank(c: Candidate) -> int:
    # Deterministic tie-break by id; the smaller id wins.
    return c.rep_id.int


def assign_least_loaded(candidates: list[Candidate]) -> Candidate | None:
    open_ = [c for c in candidates if has_capacity(c)]
    if not open_:
        return None
    return min(
        open_,
        key=lambda c: (
            c.open_leads / c.capacity if c.capacity else float(c.open_leads),
            *_turn_key(c),
        ),
    )


def choose(strategy: Strategy, candidates: list[Candidate]) -> Choice | None:
    """Run ``strategy`` over ``candidates`` (already filtered for availability and
    capacity). The returned ``current`` is only meaningful for ``weighted``."""
    if strategy is Strategy.WEIGHTED:
        return assign_smooth_weighted(candidates)
    pick = (
        assign_least_loaded(candidates)
        if strategy is Strategy.LEAST_LOADED
        else assign_round_robin(candidates)
    )
    return None if pick is None else Choice(pick.rep_id, {c.rep_id: c.current for c in candidates})
