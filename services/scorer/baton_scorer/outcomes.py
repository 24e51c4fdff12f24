"""What a rep's outcome does to a lead: ``won``, and ``lost`` or ``rejected`` by disposition
code. Pure.

The rules file's ``outcomes`` section maps each disposition code (``no_budget``,
``competitor``, ...) to an effect: ``nurture`` (back to ``recycled``; with ``days``, the
lead's score cannot qualify it again for that long), ``disqualify``, or ``reroute`` (an
SQL stays SQL and the router gives it to another rep). ``won`` makes the lead a
``customer``, the stage nothing leaves: a customer is never recycled or routed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from baton_shared.dispositions import Disposition
from baton_shared.schemas import ReasonKind, Stage

DAY = 86_400.0


class Effect(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["nurture", "disqualify", "reroute"]
    days: float = Field(
        default=0, ge=0, description="nurture: how long the score cannot re-qualify the lead"
    )


def _nurture(days: float) -> Effect:
    return Effect(action="nurture", days=days)


DEFAULT_EFFECTS: dict[str, Effect] = {
    Disposition.NO_BUDGET: _nurture(90),
    Disposition.NO_AUTHORITY: _nurture(30),
    Disposition.NO_NEED: _nurture(180),
    Disposition.BAD_TIMING: _nurture(60),
    Disposition.COMPETITOR: _nurture(180),
    Disposition.BAD_DATA: Effect(action="disqualify"),
    Disposition.NOT_A_FIT: Effect(action="disqualify"),
    Disposition.UNRESPONSIVE: _nurture(30),
}


class Outcomes(BaseModel):
    """The ``outcomes`` section of the rules file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rejected: Effect = Field(default=_nurture(0), description="a rejection without a code")
    lost: Effect = Field(default=_nurture(90), description="a lost lead without a code")
    dispositions: dict[str, Effect] = Field(
        default_factory=lambda: dict(DEFAULT_EFFECTS),
        description="disposition code -> effect; a code not listed takes the kind's default",
    )


@dataclass(frozen=True, slots=True)
class OutcomeMove:
    """The stage move an outcome makes, and how long the lead is held in nurture."""

    to: Stage
    kind: ReasonKind
    reason: str
    hold_until: float | None = None


# From where each kind moves a lead: a rejection takes back an SQL (an SDR's MQL too);
# a lost deal can be lost from any open stage.
_FROM = {
    "rejected": (Stage.SQL, Stage.MQL),
    "lost": (Stage.NEW, Stage.MQL, Stage.SQL, Stage.RECYCLED),
}


def outcome_move(
    outcomes: Outcomes,
    stage: Stage,
    kind: str,
    disposition: str | None,
    note: str | None,
    at: float,
) -> OutcomeMove | None:
    """The move a ``won``, ``lost`` or ``rejected`` at event time ``at`` makes from
    ``stage``, or None (another kind, or nothing to do from this stage)."""
    if kind == "won":
        if stage == Stage.CUSTOMER:
            return None
        return OutcomeMove(Stage.CUSTOMER, ReasonKind.WON, _reason("won", None, note))
    if stage not in _FROM.get(kind, ()):
        return None
    default = outcomes.rejected if kind == "rejected" else outcomes.lost
    effect = outcomes.dispositions.get(disposition or "", default)
    what = "rejected by rep" if kind == "rejected" else "lost"
    reason = _reason(what, disposition, note)
    reason_kind = ReasonKind.REJECTION if kind == "rejected" else ReasonKind.LOST
    if effect.action == "reroute":
        if stage != Stage.SQL:
            return None
        return OutcomeMove(Stage.SQL, ReasonKind.REROUTE, reason + "; routed to another rep")
    if effect.action == "disqualify":
        return OutcomeMove(Stage.DISQUALIFIED, reason_kind, reason)
    if not effect.days:
        return OutcomeMove(Stage.RECYCLED, reason_kind, reason)
    reason += f"; nurtured for {effect.days:g} days"
    return OutcomeMove(Stage.RECYCLED, reason_kind, reason, at + effect.days * DAY)


def _reason(what: str, disposition: str | None, note: str | None) -> str:
    if disposition:
        what += f" ({disposition.replace('_', ' ')})"
    return f"{what}: {note}" if note else what
