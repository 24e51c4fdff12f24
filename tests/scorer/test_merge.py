"""Merging two known leads: exact, order-independent, idempotent (pure, both cores)."""

from __future__ import annotations

import math
import os
from datetime import timedelta

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from baton_scorer import core, handoff, lifecycle, step
from baton_scorer.lookup import lead_view, merged_into
from baton_scorer.merge import merge_states
from baton_scorer.state import LeadState
from baton_shared.schemas import Stage
from tests.scorer.cluster import Cluster
from tests.scorer.conftest import T0

EMAIL = "x@acme.example"
IDS = ("u1", "u2", "u3", EMAIL)
KINDS = [
    ("page", "pricing"),
    ("page", "docs"),
    ("page", "careers"),
    ("track", "Webinar Attended"),
    ("track", "Email Opened"),  # capped: 5 points a day
    ("track", "Email Clicked"),  # the email group, its own half-life
    ("track", "Unsubscribed"),
]


def spec_event(make_event, lead_id: str, kind: tuple[str, str], hours: float, i: int):
    at = T0 + timedelta(hours=hours)
    fields = {"email": lead_id} if "@" in lead_id else {"user_id": lead_id}
    if kind[0] == "page":
        return make_event(
            "page", lead_id=lead_id, page_category=kind[1], at=at, event_id=f"e{i}", **fields
        )
    return make_event("track", lead_id=lead_id, name=kind[1], at=at, event_id=f"e{i}", **fields)


def solo(events, rules):
    """One lead that got every event, in time order."""
    state = core.new_state()
    for event in sorted(events, key=lambda e: e.occurred_at):
        core.score_event(state, event.model_copy(update={"lead_id": "solo"}), rules)
    return state


def assert_same_lead(actual, expected, rules, events) -> None:
    late = max(e.occurred_at for e in events).timestamp()
    scale = 1.0 + sum(abs(v) for v in expected.to_dict()["signals"].values())
    for t in (late, late + 86_400, late + 30 * 86_400):
        assert math.isclose(
            core.engagement_at(actual, t, rules),
            core.engagement_at(expected, t, rules),
            rel_tol=1e-9,
            abs_tol=1e-9 * scale,
        )
    a, e = actual.to_dict(), expected.to_dict()
    assert a["fit"] == e["fit"]
    assert a["email"] == e["email"]
    assert set(a["recent_event_ids"]) == {ev.event_id for ev in events}
    assert a["watermark"] == e["watermark"]
    assert a["last_engaged_at"] == e["last_engaged_at"]
    assert set(a["signals"]) == set(e["signals"])


def merge_events(make_event, extra: tuple[bool, bool, bool], hours: tuple[float, ...]):
    """x@acme.example into u1 (an identify), u1 into u2 and u2 into u3 (aliases);
    optionally u2's own identify with the same email, and aliases back that close a
    cycle of requests: u2 into u1, u3 into u1."""
    h = [T0 + timedelta(hours=x) for x in hours]

    def alias(i: int, new: str, old: str, event_id: str):
        return make_event(
            "alias", lead_id=new, user_id=new, previous_id=old, at=h[i], event_id=event_id
        )

    out = [
        make_event(
            "identify",
            lead_id="u1",
            user_id="u1",
            email=EMAIL,
            at=h[0],
            event_id="m-id1",
            traits={"title": "VP Sales"},
        ),
        alias(1, "u2", "u1", "m-al"),
        alias(2, "u3", "u2", "m-al3"),
    ]
    if extra[0]:
        out.append(
            make_event(
                "identify", lead_id="u2", user_id="u2", email=EMAIL, at=h[3], event_id="m-id2"
            )
        )
    if extra[1]:
        out.append(alias(4, "u1", "u2", "m-back"))
    if extra[2]:
        out.append(alias(4, "u1", "u3", "m-back3"))
    return out


histories = st.tuples(
    st.lists(
        st.tuples(st.sampled_from(IDS), st.sampled_from(KINDS), st.integers(0, 20 * 24)),
        min_size=1,
        max_size=10,
    ),
    st.tuples(st.booleans(), st.booleans(), st.booleans()),
    st.tuples(*(st.integers(0, 20 * 24) for _ in range(5))),
    st.randoms(use_true_random=False),
    st.sampled_from([0.0, 0.3]),
)


@settings(max_examples=int(os.environ.get("MERGE_EXAMPLES", 300)), deadline=None, database=None)
@given(histories)
def test_merged_lead_is_one_lead_with_the_union_of_the_events(rules, make_event, history):
    """Whatever the arrival order of the events, the merges (chained, and in cycles), the
    handoffs between the leads' partitions, the redeliveries after crashes and the
    duplicates: every id ends in one lead whose engagement (at any time), fit, dedup
    window, watermark and signals are those of one lead that got all the events.
    ``MERGE_EXAMPLES`` sets how many examples run (300)."""
    specs, extra, hours, rnd, crashes = history
    events = [spec_event(make_event, lead, kind, h, i) for i, (lead, kind, h) in enumerate(specs)]
    events += merge_events(make_event, extra, tuple(float(h) for h in hours))
    arrived = events[:]
    rnd.shuffle(arrived)
    arrived += [rnd.choice(events) for _ in range(2)]  # redelivered duplicates, any time
    note(f"arrived: {[f'{e.event_id}@{e.lead_id}' for e in arrived]}")
    cluster = Cluster(rules)
    cluster.deliver(arrived, rnd, crashes)
    note("processed:\n" + "\n".join(cluster.trace))
    roots = {cluster.resolve(i) for i in IDS}
    assert len(roots) == 1
    (root,) = roots
    assert_same_lead(cluster.states[root], solo(events, rules), rules, events)
    assert sorted([*cluster.links[root].merged_ids, root]) == sorted(IDS)


def test_alias_and_identify_combine_two_known_histories(make_event, rules) -> None:
    """The email lead (its own page view) joins u1 by u1's identify, u1 joins u2 by an
    alias; a later event for u1 counts for u2: three pricing views on one lead."""
    items = [
        make_event("page", lead_id=EMAIL, email=EMAIL, page_category="pricing"),
        make_event("identify", lead_id="u1", user_id="u1", email=EMAIL),
        make_event("page", lead_id="u1", user_id="u1", page_category="pricing"),
        make_event("alias", lead_id="u2", user_id="u2", previous_id="u1"),
        make_event("page", lead_id="u1", user_id="u1", page_category="pricing"),
    ]
    cluster = Cluster(rules)
    for item in items:
        cluster.deliver([item])
    assert cluster.resolve(EMAIL) == cluster.resolve("u1") == "u2"
    assert core.score_at(cluster.states["u2"], T0.timestamp(), rules) == pytest.approx(120)
    assert sorted(cluster.links["u2"].merged_ids) == sorted(["u1", EMAIL])
    moves = [(t.lead_id, t.to_stage, t.trigger_event_id, t.reason) for t in cluster.transitions]
    assert moves == [
        ("u1", Stage.MQL, items[2].event_id, "score 80.0 reached MQL threshold 50"),
        ("u2", Stage.MQL, "merge:u1", "lead u1 merged into u2: stage mql carried over"),
        (
            "u2",
            Stage.SQL,
            items[4].event_id,
            "score 120.0 reached SQL threshold 100",
        ),
    ]


def test_a_repeated_absorb_and_a_repeated_request_change_nothing(make_event, rules) -> None:
    cluster = Cluster(rules)
    cluster.deliver([make_event("page", lead_id="u1", user_id="u1", page_category="pricing")])
    cluster.deliver([make_event("alias", lead_id="u2", user_id="u2", previous_id="u1")])
    before = cluster.states["u2"].to_dict()
    shipped = cluster.links["u1"].shipped
    assert shipped is not None
    for value in (
        handoff.absorb("u1", "u2", shipped, ["u1"], 1),
        handoff.request("u1", "u2"),
        handoff.request("u2", "u1"),  # a merge back into the lead it was merged into
    ):
        cluster.run(step.Source.STITCHED, value)
        cluster.deliver([])
    assert cluster.states["u2"].to_dict() == before
    assert cluster.resolve("u1") == "u2"


def test_anonymous_history_follows_its_lead_into_a_merge(make_event, rules) -> None:
    cluster = Cluster(rules)
    cluster.deliver(
        [
            make_event("page", lead_id="a1", anonymous_id="a1", page_category="pricing"),
            make_event("identify", lead_id="u1", user_id="u1", anonymous_id="a1"),
            make_event("alias", lead_id="u2", user_id="u2", previous_id="u1"),
            make_event("page", lead_id="a1", anonymous_id="a1", page_category="docs"),
        ]
    )
    assert core.score_at(cluster.states["u2"], T0.timestamp(), rules) == pytest.approx(50)


def test_capped_windows_merge_as_one_lead_would_cap_them(make_event, rules) -> None:
    """Three opens on each side of a day (2 points each, 5 a day): 5, not 12."""
    opens = [
        make_event("track", lead_id=lead, name="Email Opened", at=T0 + timedelta(minutes=i))
        for i, lead in enumerate(["a", "b"] * 3)
    ]
    states = {lead: core.new_state() for lead in "ab"}
    for e in opens:
        core.score_event(states[e.lead_id], e, rules)
    merged = core.state_from_dict(
        merge_states(states["a"].to_dict(), states["b"].to_dict(), rules), rules
    )
    one = core.engagement_at(solo(opens, rules), T0.timestamp(), rules)
    assert core.engagement_at(merged, T0.timestamp(), rules) == pytest.approx(one, rel=1e-12)
    assert one == pytest.approx(5, rel=1e-3)


def test_the_merged_state_reads_the_same_in_both_cores(make_event, rules) -> None:
    a = LeadState()
    for e in [make_event("page", page_category="pricing"), make_event("identify", email=EMAIL)]:
        lifecycle.score_event(a, e, rules)
    merged = merge_states(a.to_dict(), LeadState().to_dict(), rules)
    assert core.state_from_dict(merged, rules).to_dict() == LeadState.from_dict(merged).to_dict()


def test_the_lookup_lists_merged_ids_and_names_the_survivor(make_event, rules) -> None:
    cluster = Cluster(rules)
    for item in [
        make_event("page", lead_id=EMAIL, email=EMAIL, page_category="pricing"),
        make_event("identify", lead_id="u1", user_id="u1", email=EMAIL.upper()),
    ]:
        cluster.deliver([item])
    stored = {**cluster.states["u1"].to_dict(), "identity": cluster.links["u1"].to_dict()}
    view = lead_view("u1", stored, rules, T0.timestamp(), "lead_id")
    assert view.merged_ids == [EMAIL]
    assert view.score == pytest.approx(40)
    away = {**cluster.states[EMAIL].to_dict(), "identity": cluster.links[EMAIL].to_dict()}
    assert merged_into(away) == "u1"
    assert merged_into(stored) is None
