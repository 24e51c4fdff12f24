"""The funnel report over plain records."""

from __future__ import annotations

from datetime import timedelta

from baton_analytics.funnel import Window, funnel, render_text
from baton_shared.schemas import Assignment, SlaEvent, SlaMeasure, SlaStatus, Stage, Transition
from tests.analytics.conftest import T0, MakeActivity, MakeEvent


def transition(lead: str, to: Stage, minutes: float = 0) -> Transition:
    return Transition(
        transition_id=f"{lead}-{to}",
        lead_id=lead,
        from_stage=Stage.NEW,
        to_stage=to,
        score=100,
        fit=0,
        engagement=100,
        reason="test",
        trigger_event_id="e",
        occurred_at=T0 + timedelta(minutes=minutes),
        rules_version="r@1",
    )


def sla(
    clock: str,
    status: SlaStatus,
    elapsed: float | None = None,
    measure: SlaMeasure = SlaMeasure.FIRST_TOUCH,
) -> SlaEvent:
    return SlaEvent(
        event_id=f"{clock}-{status}",
        clock_id=clock,
        lead_id=clock,
        rep_id="rep-1",
        assignment_id=f"as-{clock}",
        status=status,
        started_at=T0,
        deadline_at=T0 + timedelta(hours=1),
        at=T0,
        elapsed_seconds=elapsed,
        measure=measure,
    )


def assignment(lead: str, seconds: float) -> Assignment:
    return Assignment(
        assignment_id=f"as-{lead}",
        transition_id=f"{lead}-sql",
        lead_id=lead,
        rep_id="rep-1",
        strategy="round_robin",
        qualified_at=T0,
        assigned_at=T0 + timedelta(seconds=seconds),
    )


def test_funnel_counts_conversion_speed_breaches_and_lift(
    make_event: MakeEvent, make_activity: MakeActivity
) -> None:
    transitions = [
        transition("a", Stage.MQL),
        transition("a", Stage.SQL, 30),
        transition("b", Stage.MQL),
        transition("c", Stage.SQL),
        transition("old", Stage.MQL, -60 * 24 * 10),  # before the window
    ]
    activities = [
        make_activity("a", "accepted", at=T0 + timedelta(hours=1)),
        make_activity("c", "rejected", at=T0 + timedelta(hours=1)),
    ]
    clocks = [
        sla("a", SlaStatus.STARTED),
        sla("a", SlaStatus.MET, 120),
        sla("c", SlaStatus.STARTED),
        sla("c", SlaStatus.BREACHED),
        sla("d", SlaStatus.STARTED),
        sla("d", SlaStatus.BREACHED),
        sla("d", SlaStatus.MET, 300),  # the touch was in time; its signal came late
        sla("e", SlaStatus.STARTED),
        sla("e", SlaStatus.BREACHED),
        sla("f", SlaStatus.STARTED, measure=SlaMeasure.ASSIGN),
        sla("f", SlaStatus.BREACHED, 900, measure=SlaMeasure.ASSIGN),  # the pipeline's delay
    ]
    events = [
        make_event("a", "Demo Requested"),
        make_event("a", type="page", page_category="pricing"),
        make_event("b", type="page", page_category="pricing"),
        make_event("c", type="page", page_category="blog"),
        make_event("d", type="page", page_category="blog"),
    ]
    window = Window(T0 - timedelta(days=1), T0 + timedelta(days=1))

    r = funnel(
        window,
        transitions,
        [assignment("a", 2), assignment("c", 4)],
        activities,
        clocks,
        events,
        min_leads=1,
    )

    assert (r.mql, r.mql_to_sql, r.mql_to_sql_rate) == (2, 1, 0.5)
    assert (r.sql, r.sql_accepted, r.sql_rejected, r.sql_to_accepted_rate) == (2, 1, 1, 0.5)
    assert (r.clocks, r.clocks_met, r.clocks_breached) == (4, 2, 2)
    assert r.breach_rate == 0.5
    assert r.speed_to_lead_seconds == {"p50": 120, "p90": 300, "p99": 300}
    assert r.time_to_assign_seconds["p99"] == 4
    lift = {s.signal: s.lift for s in r.signals}
    assert lift["event:Demo Requested"] == 4.0  # 1/1 accepted vs 1/4 of active leads
    assert lift["page:pricing"] == 2.0
    assert lift["page:blog"] == 0.0
    assert r.signals[0].signal == "event:Demo Requested"
    assert "MQL → SQL             1  (50.0%)" in render_text(r)


def test_funnel_without_accepted_leads_says_there_is_no_lift(make_event: MakeEvent) -> None:
    r = funnel(Window(None, None), [], [], [], [], [make_event("a", "Demo Requested")])

    assert r.signals == [] and r.mql_to_sql_rate is None and r.breach_rate is None
    assert "no accepted or won leads" in render_text(r)


def test_signal_lift_counts_won_leads_as_well_as_accepted_ones(
    make_event: MakeEvent, make_activity: MakeActivity
) -> None:
    later = T0 + timedelta(days=5)
    transitions = [transition(lead, Stage.SQL) for lead in ("a", "w", "l")]
    activities = [
        make_activity("a", "accepted", at=T0 + timedelta(hours=1)),
        make_activity("w", "won", at=later),  # won without a recorded acceptance
        make_activity("l", "accepted", at=T0 + timedelta(hours=1)),
        make_activity("l", "lost", at=later),
    ]
    events = [
        make_event("a", "Demo Requested"),
        make_event("w", "Demo Requested"),
        make_event("l", type="page", page_category="blog"),
        make_event("x", type="page", page_category="blog"),
    ]

    r = funnel(Window(None, None), transitions, [], activities, [], events, min_leads=1)

    assert (r.sql, r.sql_accepted, r.sql_won, r.sql_lost) == (3, 2, 1, 1)
    assert r.sql_to_won_rate == 1 / 3
    demo = next(s for s in r.signals if s.signal == "event:Demo Requested")
    # a, w and l converted; two of them asked for a demo, as did 2 of 4 active leads
    assert (demo.accepted_or_won_leads, demo.all_leads) == (2, 2)
    assert demo.lift == round((2 / 3) / (2 / 4), 3)
    text = render_text(r)
    assert "SQL → won             1  (33.3%)   lost 1" in text
    assert "signal lift among accepted or won leads" in text
