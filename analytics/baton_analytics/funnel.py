"""The funnel over a window. Pure: decoded records in, a report out.

Definitions (event time throughout):

* **MQL→SQL**: leads that became MQL in the window, and the share of them that
  became SQL afterwards (at any time up to the data's end).
* **SQL→accepted**: leads that became SQL in the window, and the share a rep
  accepted (an ``accepted`` activity after the SQL transition); likewise rejected,
  won and lost (a ``won``/``lost`` activity after the SQL transition).
* **Speed-to-lead**: per SLA clock started in the window, assignment → first touch
  (``elapsed_seconds`` of its ``met``/``breached``); time-to-assign is qualifying
  action → assignment, from ``leads.assignments``.
* **Breach rate**: of the clocks started in the window that have an outcome, the
  share that ended ``breached`` (a later ``met`` correction counts as met). Only
  first-touch clocks (a rep's speed-to-lead) count; ``assign`` clocks measure the
  pipeline and are left out.
* **Signal lift**: for every event name (``event:Demo Requested``) and page category
  (``page:pricing``) on ``leads.events`` in the window, the share of leads that were
  *accepted or won* that had it divided by the share of all leads active in the
  window that had it. Above 1: over-represented among the leads that converted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from baton_analytics.stats import percentiles, ratio
from baton_shared.schemas import (
    Activity,
    ActivityKind,
    Assignment,
    EventType,
    LeadEvent,
    SlaEvent,
    SlaMeasure,
    SlaStatus,
    Stage,
    Transition,
)

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Window:
    since: datetime | None
    until: datetime | None

    def holds(self, at: datetime) -> bool:
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)


@dataclass(frozen=True)
class SignalLift:
    signal: str
    accepted_or_won_leads: int
    all_leads: int
    share_accepted_or_won: float
    share_all: float
    lift: float


@dataclass
class FunnelReport:
    since: str | None
    until: str | None
    leads_active: int
    mql: int
    mql_to_sql: int
    mql_to_sql_rate: float | None
    sql: int
    sql_accepted: int
    sql_rejected: int
    sql_to_accepted_rate: float | None
    sql_won: int
    sql_lost: int
    sql_to_won_rate: float | None
    speed_to_lead_seconds: dict[str, float]
    time_to_assign_seconds: dict[str, float]
    clocks: int
    clocks_met: int
    clocks_breached: int
    breach_rate: float | None
    signals: list[SignalLift] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pcts(values: list[float]) -> dict[str, float]:
    return {f"p{p}": round(v, 3) for p, v in percentiles(values, PERCENTILES).items()}


def signals_of(event: LeadEvent) -> list[str]:
    out = []
    if event.type == EventType.TRACK and event.name:
        out.append(f"event:{event.name}")
    if event.page_category:
        out.append(f"page:{event.page_category}")
    return out


def funnel(
    window: Window,
    transitions: list[Transition],
    assignments: list[Assignment],
    activities: list[Activity],
    sla: list[SlaEvent],
    events: list[LeadEvent],
    min_leads: int = 2,
) -> FunnelReport:
    in_window = [t for t in transitions if window.holds(t.occurred_at)]
    mql_leads = {t.lead_id: t.occurred_at for t in in_window if t.to_stage == Stage.MQL}
    sql_leads = {t.lead_id: t.occurred_at for t in in_window if t.to_stage == Stage.SQL}
    last_sql_at: dict[str, datetime] = {}
    for t in transitions:
        if t.to_stage == Stage.SQL:
            known = last_sql_at.get(t.lead_id)
            if known is None or t.occurred_at > known:
                last_sql_at[t.lead_id] = t.occurred_at
    mql_to_sql = sum(
        1 for lead, at in mql_leads.items() if lead in last_sql_at and last_sql_at[lead] >= at
    )

    last_at: dict[ActivityKind, dict[str, datetime]] = {kind: {} for kind in ActivityKind}
    for a in activities:
        known = last_at[a.kind].get(a.lead_id)
        if known is None or a.occurred_at > known:
            last_at[a.kind][a.lead_id] = a.occurred_at

    def after_sql(kind: ActivityKind) -> int:
        done = last_at[kind]
        return sum(1 for lead, at in sql_leads.items() if lead in done and done[lead] >= at)

    sql_accepted = after_sql(ActivityKind.ACCEPTED)
    sql_won = after_sql(ActivityKind.WON)

    clocks: dict[str, str] = {}
    touch_seconds: dict[str, float] = {}
    for e in sla:
        if e.measure != SlaMeasure.FIRST_TOUCH or not window.holds(e.started_at):
            continue  # an assign clock is the pipeline's delay, not a rep's speed-to-lead
        clocks.setdefault(e.clock_id, SlaStatus.STARTED.value)
        if e.status == SlaStatus.MET:
            clocks[e.clock_id] = SlaStatus.MET.value
        elif e.status == SlaStatus.BREACHED and clocks[e.clock_id] != SlaStatus.MET.value:
            clocks[e.clock_id] = SlaStatus.BREACHED.value
        if e.status in (SlaStatus.MET, SlaStatus.BREACHED) and e.elapsed_seconds is not None:
            touch_seconds[e.clock_id] = e.elapsed_seconds
    met = sum(1 for s in clocks.values() if s == SlaStatus.MET.value)
    breached = sum(1 for s in clocks.values() if s == SlaStatus.BREACHED.value)
    assign_seconds = [
        (a.assigned_at - a.qualified_at).total_seconds()
        for a in assignments
        if window.holds(a.qualified_at)
    ]

    converted = last_at[ActivityKind.ACCEPTED].keys() | last_at[ActivityKind.WON].keys()
    active, lifts = _lift(window, events, converted, min_leads)
    return FunnelReport(
        since=window.since.isoformat() if window.since else None,
        until=window.until.isoformat() if window.until else None,
        leads_active=active,
        mql=len(mql_leads),
        mql_to_sql=mql_to_sql,
        mql_to_sql_rate=ratio(mql_to_sql, len(mql_leads)),
        sql=len(sql_leads),
        sql_accepted=sql_accepted,
        sql_rejected=after_sql(ActivityKind.REJECTED),
        sql_to_accepted_rate=ratio(sql_accepted, len(sql_leads)),
        sql_won=sql_won,
        sql_lost=after_sql(ActivityKind.LOST),
        sql_to_won_rate=ratio(sql_won, len(sql_leads)),
        speed_to_lead_seconds=_pcts(list(touch_seconds.values())),
        time_to_assign_seconds=_pcts(assign_seconds),
        clocks=len(clocks),
        clocks_met=met,
        clocks_breached=breached,
        breach_rate=ratio(breached, met + breached),
        signals=lifts,
    )


def _lift(
    window: Window, events: list[LeadEvent], converted: set[str], min_leads: int
) -> tuple[int, list[SignalLift]]:
    # Anonymous history belongs to the lead an identify linked it to.
    resolved: dict[str, str] = {}
    for e in events:
        if e.anonymous_id and e.lead_id != e.anonymous_id:
            resolved.setdefault(e.anonymous_id, e.lead_id)
    leads_with: dict[str, set[str]] = {}
    active: set[str] = set()
    for e in events:
        if not window.holds(e.occurred_at):
            continue
        lead = resolved.get(e.lead_id, e.lead_id)
        active.add(lead)
        for s in signals_of(e):
            leads_with.setdefault(s, set()).add(lead)
    good = converted & active
    if not good or not active:
        return len(active), []
    out = []
    for signal, leads in leads_with.items():
        if len(leads) < min_leads:
            continue
        share_good = len(leads & good) / len(good)
        share_all = len(leads) / len(active)
        out.append(
            SignalLift(
                signal=signal,
                accepted_or_won_leads=len(leads & good),
                all_leads=len(leads),
                share_accepted_or_won=round(share_good, 4),
                share_all=round(share_all, 4),
                lift=round(share_good / share_all, 3),
            )
        )
    out.sort(key=lambda s: (-s.lift, -s.all_leads, s.signal))
    return len(active), out


def render_text(r: FunnelReport) -> str:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    def secs(d: dict[str, float]) -> str:
        return ", ".join(f"{k} {v:,.1f}s" for k, v in d.items()) or "no data"

    lines = [
        f"Funnel {r.since or 'beginning'} → {r.until or 'now'}",
        f"  leads active          {r.leads_active:,}",
        f"  MQL                   {r.mql:,}",
        f"  MQL → SQL             {r.mql_to_sql:,}  ({pct(r.mql_to_sql_rate)})",
        f"  SQL                   {r.sql:,}",
        f"  SQL → accepted        {r.sql_accepted:,}  ({pct(r.sql_to_accepted_rate)})"
        f"   rejected {r.sql_rejected:,}",
        f"  SQL → won             {r.sql_won:,}  ({pct(r.sql_to_won_rate)})   lost {r.sql_lost:,}",
        f"  speed-to-lead         {secs(r.speed_to_lead_seconds)}",
        f"  time-to-assign        {secs(r.time_to_assign_seconds)}",
        f"  SLA clocks            {r.clocks:,}: met {r.clocks_met:,}, "
        f"breached {r.clocks_breached:,}, breach rate {pct(r.breach_rate)}",
    ]
    if r.signals:
        lines.append(
            "  signal lift among accepted or won leads (their share / share of all leads):"
        )
        for s in r.signals[:15]:
            lines.append(
                f"    {s.lift:5.2f}×  {s.signal:<32} {s.accepted_or_won_leads}/{s.all_leads} leads"
            )
    else:
        lines.append("  signal lift: no accepted or won leads with events in the window")
    return "\n".join(lines)
