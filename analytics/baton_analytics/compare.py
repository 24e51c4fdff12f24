"""Current versus candidate rules over the same history. Pure: two replays in, numbers out.

For each lead the *path* under a rules file is when it first became MQL and SQL
(event time) and where it ended. A lead *changes* when its path differs. Time to MQL
or SQL runs from the lead's first event. Over a window (``since_at``) the history
before it is scored too, but only the window's transitions count; a path remembers
the stage the lead had when the window began, so a lead that qualifies before the
window under one rules file and inside it under the other is told apart from one
that does not qualify at all. A lead merged into another is one person: its transitions
from before the merge, and its outcomes, count for the survivor.

Outcomes come from ``leads.activity`` on two independent axes: a rep's latest
*disposition* of the lead (``accepted`` or ``rejected``) and the deal's latest *close*
(``won`` or ``lost``). A lead accepted and then won counts in both the accepted and the
won row; a lead rejected and accepted later counts as accepted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from baton_analytics.replay import ReplayResult
from baton_analytics.stats import percentiles
from baton_shared.schemas import Activity, ActivityKind, Stage

DISPOSITIONS = (ActivityKind.ACCEPTED, ActivityKind.REJECTED)
CLOSES = (ActivityKind.WON, ActivityKind.LOST)
OUTCOMES = tuple(k.value for k in (*DISPOSITIONS, *CLOSES))


@dataclass
class Outcomes:
    """Each lead's latest disposition and latest close, fed activities in any order."""

    disposition: dict[str, tuple[float, str]] = field(default_factory=dict)
    close: dict[str, tuple[float, str]] = field(default_factory=dict)

    def note(self, activity: Activity) -> None:
        if activity.kind in DISPOSITIONS:
            latest = self.disposition
        elif activity.kind in CLOSES:
            latest = self.close
        else:
            return  # contacted, qualified: work in progress, not an outcome
        at = activity.occurred_at.timestamp()
        known = latest.get(activity.lead_id)
        if known is None or at >= known[0]:
            latest[activity.lead_id] = (at, activity.kind.value)

    def leads(self, outcome: str) -> list[str]:
        """The leads whose latest disposition or close is ``outcome``, sorted."""
        latest = self.disposition if outcome in DISPOSITIONS else self.close
        return sorted(lead for lead, (_, kind) in latest.items() if kind == outcome)

    @classmethod
    def of(cls, activities: list[Activity]) -> Outcomes:
        outcomes = cls()
        for a in activities:
            outcomes.note(a)
        return outcomes


@dataclass(frozen=True)
class LeadPath:
    mql_at: float | None  # first MQL transition in the window
    sql_at: float | None
    final_stage: str
    final_score: float
    start_stage: str = Stage.NEW.value  # when the window began

    @property
    def reached_sql(self) -> bool:
        return self.sql_at is not None

    @property
    def reached_mql(self) -> bool:
        return self.mql_at is not None or self.sql_at is not None


@dataclass(frozen=True)
class Change:
    lead_id: str
    current: LeadPath
    candidate: LeadPath

    @property
    def summary(self) -> str:
        a, b = self.current, self.candidate
        sql = Stage.SQL.value
        if a.reached_sql and not b.reached_sql and b.start_stage == sql:
            return "SQL earlier (before the window)"
        if b.reached_sql and not a.reached_sql and a.start_stage == sql:
            return "SQL later (in the window, was before)"
        if a.reached_sql != b.reached_sql:
            return "now SQL" if b.reached_sql else "no longer SQL"
        if a.reached_mql != b.reached_mql:
            return "now MQL" if b.reached_mql else "no longer MQL"
        if a.sql_at is not None and b.sql_at is not None and a.sql_at != b.sql_at:
            return "SQL earlier" if b.sql_at < a.sql_at else "SQL later"
        if a.mql_at is not None and b.mql_at is not None and a.mql_at != b.mql_at:
            return "MQL earlier" if b.mql_at < a.mql_at else "MQL later"
        if (a.mql_at is None) != (b.mql_at is None):
            return "straight to SQL (no MQL step)" if b.mql_at is None else "MQL before SQL"
        return f"ends {b.final_stage} (was {a.final_stage})"


@dataclass(frozen=True)
class Side:
    rules_version: str
    mql_leads: int
    sql_leads: int
    transitions: dict[str, int]
    hours_to_mql: list[float]
    hours_to_sql: list[float]


@dataclass(frozen=True)
class OutcomeRow:
    outcome: str
    leads: int
    sql_current: int
    sql_candidate: int
    median_score_current: float | None
    median_score_candidate: float | None


@dataclass
class Comparison:
    current: Side
    candidate: Side
    leads: int
    changes: list[Change]
    outcomes: list[OutcomeRow] = field(default_factory=list)

    def change_kinds(self) -> dict[str, int]:
        return dict(Counter(c.summary for c in self.changes).most_common())


def paths(result: ReplayResult, since_at: float | None = None) -> dict[str, LeadPath]:
    mql: dict[str, float] = {}
    sql: dict[str, float] = {}
    last: dict[str, str] = {}
    start: dict[str, str] = {}
    merged = result.merged
    for t in result.transitions:
        at = t.occurred_at.timestamp()
        lead_id = merged.get(t.lead_id, t.lead_id)
        if since_at is not None and at < since_at:
            start[lead_id] = last[lead_id] = t.to_stage.value
            continue
        if t.to_stage == Stage.MQL:
            mql.setdefault(lead_id, at)
        elif t.to_stage == Stage.SQL:
            sql.setdefault(lead_id, at)
        last[lead_id] = t.to_stage.value
    leads = set(result.first_event_at) | set(last)
    return {
        lead: LeadPath(
            mql.get(lead),
            sql.get(lead),
            last.get(lead, Stage.NEW.value),
            result.final_scores.get(lead, 0.0),
            start.get(lead, Stage.NEW.value),
        )
        for lead in leads
    }


def _side(result: ReplayResult, lead_paths: dict[str, LeadPath], since_at: float | None) -> Side:
    first = result.first_event_at
    to_mql = [
        (p.mql_at - first[lead]) / 3600
        for lead, p in lead_paths.items()
        if p.mql_at is not None and lead in first
    ]
    to_sql = [
        (p.sql_at - first[lead]) / 3600
        for lead, p in lead_paths.items()
        if p.sql_at is not None and lead in first
    ]
    return Side(
        rules_version=result.rules_version,
        mql_leads=sum(1 for p in lead_paths.values() if p.reached_mql),
        sql_leads=sum(1 for p in lead_paths.values() if p.reached_sql),
        transitions=dict(
            Counter(
                t.to_stage.value
                for t in result.transitions
                if since_at is None or t.occurred_at.timestamp() >= since_at
            )
        ),
        hours_to_mql=sorted(max(0.0, h) for h in to_mql),
        hours_to_sql=sorted(max(0.0, h) for h in to_sql),
    )


def compare(
    current: ReplayResult,
    candidate: ReplayResult,
    outcomes: Outcomes,
    since_at: float | None = None,
) -> Comparison:
    """Both paths of every lead, the leads that change, and a row per outcome present.

    ``since_at`` (epoch seconds): only transitions from then on count; the results hold
    every lead's whole history.
    """
    a, b = paths(current, since_at), paths(candidate, since_at)
    empty = LeadPath(None, None, Stage.NEW.value, 0.0)
    changes = []
    for lead in sorted(set(a) | set(b)):
        pa, pb = a.get(lead, empty), b.get(lead, empty)
        if _route(pa) != _route(pb):
            changes.append(Change(lead, pa, pb))
    rows = []
    merged = current.merged  # the same history: the same merges under any rules
    for outcome in OUTCOMES:
        leads = sorted({merged.get(lead, lead) for lead in outcomes.leads(outcome)})
        if not leads:
            continue
        rows.append(
            OutcomeRow(
                outcome=outcome,
                leads=len(leads),
                sql_current=sum(1 for lead in leads if a.get(lead, empty).reached_sql),
                sql_candidate=sum(1 for lead in leads if b.get(lead, empty).reached_sql),
                median_score_current=_median([a.get(x, empty).final_score for x in leads]),
                median_score_candidate=_median([b.get(x, empty).final_score for x in leads]),
            )
        )
    return Comparison(
        current=_side(current, a, since_at),
        candidate=_side(candidate, b, since_at),
        leads=len(set(a) | set(b)),
        changes=changes,
        outcomes=rows,
    )


def _route(p: LeadPath) -> tuple[str, float | None, float | None, str]:
    return (p.start_stage, p.mql_at, p.sql_at, p.final_stage)


def _median(values: list[float]) -> float | None:
    return percentiles(values, (50,)).get(50)
