"""The scoring step the worker and ``baton replay`` share: what a batch of raw records
does to the leads' states, and what it hands back for the shell to make durable."""

from __future__ import annotations

from datetime import timedelta

from baton_analytics.replay import replay_all
from baton_scorer import core, step
from baton_scorer.identity import Alias
from baton_scorer.rules import Rules
from baton_scorer.step import Source
from baton_shared.schemas import Activity, ActivityKind, Stage
from tests.scorer.conftest import T0, MakeEvent


def activity(kind: ActivityKind, lead_id: str = "lead-1", **fields: object) -> Activity:
    return Activity(
        activity_id=f"act-{kind.value}-{lead_id}",
        lead_id=lead_id,
        kind=kind,
        occurred_at=T0 + timedelta(minutes=5),
        **fields,
    )


class States(dict):
    """The lookup the step is given: a new lead starts from an empty state."""

    def __call__(self, lead_id: str) -> object:
        if lead_id not in self:
            self[lead_id] = core.new_state()
        return self[lead_id]


def test_a_batch_scores_events_dedups_and_names_the_leads_to_save(
    rules: Rules, make_event: MakeEvent
) -> None:
    demo = make_event(name="Demo Requested", lead_id="a", event_id="e1")
    later = make_event("page", lead_id="b", page_category="docs", at=T0 + timedelta(hours=1))
    records = [(Source.EVENTS, demo.to_bytes()), (Source.EVENTS, demo.to_bytes())]
    records.append((Source.EVENTS, later.to_bytes()))
    states = States()

    out = step.score_batch(records, states, rules)

    assert [(t.lead_id, t.to_stage) for t in out.transitions] == [("a", Stage.SQL)]
    assert (out.scored, out.duplicates) == (2, 1)
    assert list(out.touched) == ["a", "b"]
    assert out.newest_at == later.occurred_at.timestamp()
    assert out.dead_letters == [] and out.to_stitch == []


def test_undecodable_records_become_dead_letters_and_the_rest_is_scored(
    rules: Rules, make_event: MakeEvent
) -> None:
    good = make_event(name="Demo Requested")
    records = [
        (Source.EVENTS, b"not json"),
        (Source.ACTIVITY, b'{"kind": "qualified"}'),
        (Source.EVENTS, good.to_bytes()),
    ]

    out = step.score_batch(records, States(), rules)

    assert [index for index, _ in out.dead_letters] == [0, 1]
    assert all(error.startswith("ValidationError: ") for _, error in out.dead_letters)
    assert out.scored == 1 and len(out.transitions) == 1


def test_anonymous_events_are_handed_back_to_stitch_unless_already_stitched(
    rules: Rules, make_event: MakeEvent
) -> None:
    anonymous = make_event(name="Demo Requested", lead_id="anon-1", anonymous_id="anon-1")
    released = make_event(name="Demo Requested", lead_id="lead-9", anonymous_id="anon-2")
    states = States()

    out = step.score_batch(
        [(Source.EVENTS, anonymous.to_bytes()), (Source.STITCHED, released.to_bytes())],
        states,
        rules,
    )

    assert out.to_stitch == [(0, "anon-1")]
    assert [t.lead_id for t in out.transitions] == ["lead-9"]
    assert "anon-1" not in states


def test_only_a_reps_qualification_or_rejection_moves_a_lead(
    rules: Rules, make_event: MakeEvent
) -> None:
    states = States()
    step.score_batch([(Source.EVENTS, make_event(name="Demo Requested").to_bytes())], states, rules)
    records = [
        (Source.ACTIVITY, activity(ActivityKind.CONTACTED).to_bytes()),
        (Source.ACTIVITY, activity(ActivityKind.REJECTED, reason="no budget").to_bytes()),
    ]

    out = step.score_batch(records, states, rules)

    assert out.rep_actions == ["rejected"]
    assert [(t.to_stage, t.reason) for t in out.transitions] == [
        (Stage.RECYCLED, "rejected by rep: no budget")
    ]
    assert list(out.touched) == ["lead-1"]


def test_stitching_holds_anonymous_events_until_an_identify_releases_them(
    make_event: MakeEvent,
) -> None:
    aliases: dict[str, Alias] = {}

    def lookup(anonymous_id: str) -> Alias:
        return aliases.setdefault(anonymous_id, Alias())

    visit = make_event("page", lead_id="anon-1", anonymous_id="anon-1", page_category="pricing")
    identify = make_event("identify", lead_id="ann@example.com", anonymous_id="anon-1")

    held = step.stitch_batch([visit.to_bytes(), b"{}"], lookup)
    out = step.stitch_batch([identify.to_bytes()], lookup)

    assert held.held == 1 and held.released == [] and [i for i, _ in held.dead_letters] == [1]
    assert [(e.event_id, e.lead_id) for e in out.released] == [
        (visit.event_id, "ann@example.com"),
        (identify.event_id, "ann@example.com"),
    ]
    assert out.touched == {"anon-1": aliases["anon-1"]}


def test_due_timers_recycle_a_cold_sql_lead_and_not_before(
    rules: Rules, make_event: MakeEvent
) -> None:
    states = States()
    step.score_batch([(Source.EVENTS, make_event(name="Demo Requested").to_bytes())], states, rules)
    due = states["lead-1"].due
    assert due is not None

    assert step.fire_timers(["lead-1"], states, due - 1, rules) == []
    fired = step.fire_timers(["lead-1"], states, due, rules)

    assert [(t.to_stage, t.trigger_event) for t in fired] == [(Stage.RECYCLED, "recycle timer")]


def test_the_stream_step_and_replay_give_the_same_transitions(
    rules: Rules, make_event: MakeEvent
) -> None:
    items = [
        make_event("page", lead_id="a", page_category="pricing"),
        make_event("page", lead_id="a", page_category="pricing", at=T0 + timedelta(minutes=1)),
        make_event(name="Demo Requested", lead_id="b"),
        activity(ActivityKind.REJECTED, lead_id="b"),
        activity(ActivityKind.QUALIFIED, lead_id="a", bant=["budget"]),
    ]
    source = [Source.ACTIVITY if isinstance(i, Activity) else Source.EVENTS for i in items]

    streamed = step.score_batch(
        [(s, i.to_bytes()) for s, i in zip(source, items, strict=True)], States(), rules
    )
    replayed = replay_all(items, rules, end_at=None)

    assert streamed.transitions == replayed.transitions
    assert len(streamed.transitions) >= 3
