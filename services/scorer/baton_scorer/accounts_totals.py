"""A running estimate of an account's engagement, with a bound on its error. Pure.

Deciding an account's stage after each lead update needs its engagement at its event
time; summing every lead's each time costs O(leads) per update. :class:`Totals` keeps,
per half-life, the sum of the members' engagement at one reference time ``at``,
adjusted as members come, change and go (O(groups) per update), and the scale of every
term it added or removed: the estimate is within ``RELATIVE_MARGIN`` of that scale of
the exact sum. When no threshold lies that close to the estimate, the exact sum is on
the same side of every threshold; otherwise, and for a transition's numbers, the
account sums its leads exactly (:meth:`baton_scorer.accounts.AccountState.points_at`),
so every decision is the exact one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from baton_scorer.rules import Rules

RELATIVE_MARGIN = 1e-9  # far above the rounding of REBUILD_AFTER additions
REBUILD_AFTER = 100_000  # adjustments before the sums are rebuilt from the members
MAX_EXPONENT = 512.0  # a term 2 ** 512 times its lead's value: rebuild at a later time


@dataclass(slots=True)
class Totals:
    at: float
    sums: dict[float, float] = field(default_factory=dict)  # half-life -> sum at ``at``
    scale: float = 0.0  # the sum of |every term added or removed|
    adjustments: int = 0

    @classmethod
    def build(cls, members: Iterable[Any], at: float, rules: Rules) -> Totals | None:
        """The totals of ``members`` (``Member``) at ``at``; None if a term overflows."""
        totals = cls(at)
        for member in members:
            if not totals.add(member, rules, 1.0):
                return None
        return totals

    def add(self, member: Any, rules: Rules, sign: float) -> bool:
        """Add (``sign`` 1) or remove (-1) a member's terms; False when one would
        overflow (nothing changed then: rebuild later)."""
        origin = member.origin
        if origin is None:
            return True
        hl = rules.compiled.group_half_life
        h0 = rules.half_life_seconds
        terms = []
        for group, value in member.groups.items():
            h = hl.get(group, h0)
            exponent = (origin - self.at) / h
            if exponent > MAX_EXPONENT:
                return False
            terms.append((h, value * 2.0**exponent))
        sums = self.sums
        for h, term in terms:
            sums[h] = sums.get(h, 0.0) + sign * term
            self.scale += abs(term)
        self.adjustments += 1
        return True

    def estimate(self, t: float) -> tuple[float, float]:
        """The engagement at ``t`` (≥ ``at``), and how far the exact sum may be from it."""
        value = sum(s * 2.0 ** ((self.at - t) / h) for h, s in self.sums.items())
        return value, RELATIVE_MARGIN * (self.scale + 1.0)

    def stale(self) -> bool:
        return self.adjustments > REBUILD_AFTER
