"""Replay merges known leads as the live scorer does: an identify carrying the email that
email events were keyed by, and an alias, make one lead whose score is that of one lead
with the union of the events; the ids merged away are no leads of their own."""

from __future__ import annotations

from datetime import timedelta

import pytest

from baton_analytics.compare import Outcomes, compare
from baton_analytics.replay import Replay, ReplayResult, replay_all
from baton_scorer import core
from baton_scorer.rules import Rules
from baton_shared.schemas import EventType, LeadEvent, Stage
from tests.analytics.conftest import T0, MakeActivity, MakeEvent

EMAIL = "reader@mail.example"
END = (T0 + timedelta(hours=2)).timestamp()


def history(make_event: MakeEvent) -> list[LeadEvent]:
    """Email clicks keyed by the address, an old id reaching MQL, the user browsing; then
    the user's identify with the address (as typed) and an alias of the old id; then more
    of each old key."""
    m = timedelta(minutes=1)
    return [
        make_event(EMAIL, "Email Clicked", at=T0, email=EMAIL),
        make_event(EMAIL, "Email Clicked", at=T0 + m, email=EMAIL),
        make_event("old-id", "Webinar Attended", at=T0 + 2 * m),
        make_event("old-id", "Case Study Downloaded", at=T0 + 3 * m),
        make_event("old-id", type="page", page_category="product", at=T0 + 4 * m),
        make_event("user-1", type="page", page_category="docs", at=T0 + 5 * m),
        make_event(
            "user-1",
            type=EventType.IDENTIFY,
            at=T0 + 10 * m,
            user_id="user-1",
            email=" Reader@Mail.example ",
            traits={"title": "VP Sales"},
        ),
        make_event("user-1", type=EventType.ALIAS, at=T0 + 11 * m, previous_id="old-id"),
        make_event(EMAIL, "Email Clicked", at=T0 + 20 * m, email=EMAIL),
        make_event("old-id", "Webinar Attended", at=T0 + 21 * m),
    ]


def one_lead(events: list[LeadEvent], rules: Rules) -> ReplayResult:
    """The same events as one lead's from the start (no merge to make)."""
    plain = [
        e.model_copy(update={"lead_id": "user-1", "previous_id": None})
        for e in events
        if e.type is not EventType.ALIAS
    ]
    return replay_all(plain, rules, END)


def test_an_identify_and_an_alias_make_one_lead(rules: Rules, make_event: MakeEvent) -> None:
    events = history(make_event)
    merge_at = events[7].occurred_at

    result = replay_all(events, rules, END)

    assert result.merged == {EMAIL: "user-1", "old-id": "user-1"}
    assert set(result.final_scores) == {"user-1"}
    assert result.final_scores == pytest.approx(one_lead(events, rules).final_scores, abs=1e-9)
    assert set(result.first_event_at) == {"user-1"}
    assert result.first_event_at["user-1"] == T0.timestamp()
    # Before the merge the old id was a lead of its own (as on the live topic); after it
    # every transition is the survivor's, the first naming the merge and both ids.
    assert [(t.lead_id, t.to_stage) for t in result.transitions if t.occurred_at < merge_at] == [
        ("old-id", Stage.MQL)
    ]
    after = [t for t in result.transitions if t.occurred_at >= merge_at]
    assert {t.lead_id for t in after} == {"user-1"}
    merge = after[0]
    assert merge.trigger_event == "merge" and merge.trigger_event_id == "merge:old-id"
    assert merge.reason.startswith("lead old-id merged into user-1: ")
    assert merge.to_stage is Stage.MQL


def test_merged_ids_stay_with_the_survivor_in_any_order(
    rules: Rules, make_event: MakeEvent
) -> None:
    """The identify and alias first, every other event after: no merge transition is
    needed, and the score is the same one lead's."""
    events = history(make_event)
    merging = [e for e in events if e.type in (EventType.IDENTIFY, EventType.ALIAS)]
    rest = [e for e in events if e not in merging]

    result = replay_all([*merging, *rest], rules, END)

    assert result.merged == {EMAIL: "user-1", "old-id": "user-1"}
    assert {t.lead_id for t in result.transitions} == {"user-1"}
    assert result.final_scores == pytest.approx(one_lead(events, rules).final_scores, abs=1e-9)


@pytest.mark.skipif(core.KIND != "native", reason="the compiled core reads encoded events")
def test_encoded_events_merge_the_same(rules: Rules, make_event: MakeEvent) -> None:
    """The compiled core scores the encoded events and leaves the alias and identify to
    the merge: the same transitions as the events one by one."""
    pages = ["docs", "product", "pricing", "blog"]
    later = [
        make_event(
            ["user-1", "old-id", EMAIL, "user-2", f"lead-{i % 7}"][i % 5],
            type="page",
            page_category=pages[i % 4],
            at=T0 + timedelta(minutes=30, seconds=i),
        )
        for i in range(300)
    ]  # long runs between the records left to Python, which merge more leads
    later[150] = make_event(
        "user-2", type=EventType.ALIAS, at=T0 + timedelta(minutes=32), previous_id="lead-3"
    )
    events = [*history(make_event), *later]
    wire, objects = Replay(rules), Replay(rules)
    wire.score_records([e.to_bytes() for e in events])
    for e in events:
        objects.event(e)

    assert wire.transitions == objects.transitions
    result = wire.finish(END)
    assert result == objects.finish(END)
    assert result.merged == {EMAIL: "user-1", "old-id": "user-1", "lead-3": "user-2"}


def test_a_comparison_counts_a_merged_person_once(
    rules: Rules, make_event: MakeEvent, make_activity: MakeActivity
) -> None:
    result = replay_all(history(make_event), rules, END)
    accepted = make_activity("old-id", "accepted", at=T0 + timedelta(hours=1))

    comparison = compare(result, result, Outcomes.of([accepted]), None)

    assert comparison.leads == 1
    assert comparison.current.mql_leads == 1
    assert [(row.outcome, row.leads) for row in comparison.outcomes] == [("accepted", 1)]
