"""The compiled scoring core (``baton_scorer_native``) computes exactly what the Python
reference (``baton_scorer.lifecycle``) computes: every transition (ids, stages, scores,
reasons, signals, times) and every lead state, byte for byte once serialised.

Random rules (thresholds, half-life groups, caps, first-time-only rules, URL and
property matchers, express lanes, the qualification gate, recycling, competitors) meet
random histories (late and duplicate events, trait and email changes, rep actions,
timers), and both cores run them side by side.
"""

from __future__ import annotations

import fnmatch
import math
import pickle
import random
import sys
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baton_scorer import core, lifecycle
from baton_scorer.rules import Rules, load_rules, parse_rules
from baton_scorer.state import engagement_from_dict
from baton_scorer.transitions import build_signal, build_transition
from baton_shared.schemas import EventType, LeadEvent, ReasonKind, Signal, Stage, Transition

pytestmark = pytest.mark.skipif(
    core._native is None, reason="baton_scorer_native is not built (make install builds it)"
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
NAMES = ["Demo Requested", "Email Opened", "Email Clicked", "Webinar Attended", "Heartbeat",
         "Unsubscribed", "Pricing Inquiry", "Trial Started"]  # fmt: skip
PAGES = ["pricing", "pricing", "blog", "docs", "product", "careers", "demo", None]
URLS = ["https://x.io/pricing/enterprise", "/pricing", "/blog/post", "/docs/api", None]
TRAITS = [{}, {}, {}, {"title": "VP Sales"}, {"employees": 5000}, {"title": "intern"},
          {"industry": "Software", "employees": 20}, {"country": "DE"}]  # fmt: skip
EMAILS = [None] * 6 + ["a@corp.com", "b@gmail.com", "", "c@rival.io"]


def wire(transitions: list[Transition]) -> list[bytes]:
    return [t.to_bytes() for t in transitions]


def state_bytes(state: Any) -> bytes:
    return orjson.dumps(state.to_dict(), option=orjson.OPT_SORT_KEYS)


@st.composite
def rule_files(draw: st.DrawFn) -> Rules:
    mql = draw(st.sampled_from([20, 50, 60.5]))
    sql = mql + draw(st.sampled_from([30, 50, 80]))
    hysteresis = draw(st.sampled_from([0, 10, 12.5]))
    below = draw(st.sampled_from([None, 10, 25]))
    if below is not None and below > sql - hysteresis:
        below = None
    cold = draw(st.sampled_from([None, 0.5, 30]))
    half_life = draw(st.sampled_from([0.25, 7, 14]))
    groups = draw(st.sampled_from(["", "  groups: {email: {half_life_days: 2}}\n"]))
    email_group = "email" if groups else "default"
    cap_hours = draw(st.sampled_from([1, 24]))
    required = draw(st.booleans())
    framework = draw(st.sampled_from(["bant", "champ"]))  # they share "authority"
    competitors = draw(st.sampled_from(["[]", "[rival.io]"]))
    lanes = draw(
        st.sampled_from(
            [
                "[Demo Requested]",
                "[Demo Requested, {type: page, url: '*/pricing/enterprise*'}]",
                "[{type: track, event: Pricing Inquiry, properties: {plan: enterprise}}]",
            ]
        )
    )
    hold_days = draw(st.sampled_from([0, 0.5, 30]))
    cold_line = "null" if cold is None else cold
    below_line = "null" if below is None else below
    text = f"""
name: differential
thresholds: {{mql: {mql}, sql: {sql}, hysteresis: {hysteresis}}}
engagement:
  half_life_days: {half_life}
{groups}  events: {{Email Clicked: 8, Webinar Attended: 20, Unsubscribed: -15, Trial Started: 50}}
  pages: {{blog: 5, docs: 10, product: 15, pricing: 40, careers: -10}}
  rules:
    - id: email-open
      match: {{type: track, event: Email Opened}}
      points: 2
      group: {email_group}
      cap: {{points: 5, window_hours: {cap_hours}}}
    - id: enterprise-pricing
      match: {{type: page, url: "*/pricing/enterprise*"}}
      points: 10
      first_time_only: true
    - id: docs-api
      match: {{properties: {{section: api}}}}
      points: 3
express_lanes: {lanes}
fit:
  title: {{"\\\\b(vp|head|chief)\\\\b": 20, "\\\\bintern\\\\b": -20}}
  company_size: [{{min: 1000, points: 15}}, {{max: 9, points: -5}}]
  industry: {{software: 10}}
  email_domains: {{free_mail: [gmail.com], free_mail_points: -10, competitors: {competitors}}}
qualification: {{required: {str(required).lower()}, framework: {framework}}}
recycle: {{cold_days: {cold_line}, below_score: {below_line}}}
outcomes:
  dispositions:
    no_budget: {{action: nurture, days: {hold_days}}}
    bad_data: {{action: disqualify}}
    wrong_team: {{action: reroute}}
"""
    return parse_rules(text, "differential.yaml")


@st.composite
def histories(draw: st.DrawFn) -> list[tuple]:
    """Steps: ("event", fields) | ("action", kind, bant, note, hours, disposition)
    | ("timer", hours)."""
    steps = []
    ids = 0
    for _ in range(draw(st.integers(1, 40))):
        what = draw(st.sampled_from(["event"] * 6 + ["dup", "action", "timer"]))
        # Mostly within days (scores build up), some weeks late or early, timers far out.
        hours = draw(
            st.one_of(
                st.floats(-48, 24 * 5, allow_nan=False),
                st.floats(-24 * 20, 24 * 90, allow_nan=False),
            )
        )
        if what == "event" or (what == "dup" and ids == 0):
            ids += 1
            kind = draw(st.sampled_from(["track", "page", "identify"]))
            fields: dict[str, Any] = {"event_id": f"e{ids}", "hours": hours, "type": kind}
            if kind == "track":
                fields["name"] = draw(st.sampled_from(NAMES))
                if draw(st.booleans()):
                    fields["properties"] = {"plan": "enterprise", "section": "api"}
            elif kind == "page":
                fields["page_category"] = draw(st.sampled_from(PAGES))
                url = draw(st.sampled_from(URLS))
                fields["properties"] = {"url": url} if url else {}
            fields["traits"] = draw(st.sampled_from(TRAITS))
            fields["email"] = draw(st.sampled_from(EMAILS))
            steps.append(("event", fields))
        elif what == "dup":
            steps.append(("dup", draw(st.integers(1, ids))))
        elif what == "action":
            kind = draw(st.sampled_from(["qualified", "rejected", "lost", "won"]))
            fields = [
                "budget",
                "authority",
                "need",
                "timeline",
                "challenges",
                "money",
                "prioritization",
            ]
            bant = tuple(draw(st.one_of(st.just(fields), st.lists(st.sampled_from(fields)))))
            note = draw(st.sampled_from([None, "", "no budget"]))
            code = draw(st.sampled_from([None, "no_budget", "bad_data", "wrong_team", "unlisted"]))
            steps.append(("action", kind, bant, note, hours, code))
        else:
            steps.append(("timer", hours))
    return steps


def make_event(lead_id: str, fields: dict[str, Any]) -> LeadEvent:
    at = T0 + timedelta(hours=fields["hours"])
    return LeadEvent(
        event_id=fields["event_id"],
        lead_id=lead_id,
        type=EventType(fields["type"]),
        name=fields.get("name"),
        page_category=fields.get("page_category"),
        properties=fields.get("properties", {}),
        traits=fields.get("traits", {}),
        email=fields.get("email"),
        occurred_at=at,
        received_at=at,
        source="test",
    )


def run_both(rules: Rules, steps: list[tuple], lead_id: str = "lead-1") -> None:
    ref = lifecycle.LeadState()
    native = core._native.LeadState()
    compiled = core.native_core(rules)
    events: dict[int, LeadEvent] = {}
    for i, step in enumerate(steps):
        if step[0] in ("event", "dup"):
            if step[0] == "event":
                event = make_event(lead_id, step[1])
                events[int(step[1]["event_id"][1:])] = event
            else:
                event = events[step[1]]
            _, want = lifecycle.score_event(ref, event, rules)
            got = compiled.score_event(native, event, None)
        elif step[0] == "action":
            _, kind, bant, reason, hours, code = step
            at = (T0 + timedelta(hours=hours)).timestamp()
            args = (lead_id, f"a{i}", kind, at, rules)
            extra = {"reason": reason, "bant": bant, "disposition": code}
            _, want = lifecycle.apply_rep_action(ref, *args, **extra)
            _, got = core.native_rep_action(native, *args, **extra)
        else:
            now = (T0 + timedelta(hours=step[1])).timestamp()
            want = lifecycle.expire(ref, lead_id, now, rules)
            got = compiled.expire(native, lead_id, now)
        assert wire(list(got)) == wire(want), f"step {i}: {step}"
        assert state_bytes(native) == state_bytes(ref), f"step {i}: {step}"
        assert compiled.due_at_of(native) == lifecycle.due_at(ref, rules)


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(rules=rule_files(), steps=histories())
def test_native_core_matches_the_reference_on_random_rules_and_histories(
    rules: Rules, steps: list[tuple]
) -> None:
    run_both(rules, steps)


def test_native_core_matches_the_reference_on_the_bench_stream() -> None:
    """The bench's mix over many leads, with the shipped rules: every transition equal,
    every final state equal."""
    rules = load_rules()
    rnd = random.Random(3)
    kinds = [("page", None, "blog"), ("page", None, "pricing"), ("page", None, "product"),
             ("track", "Email Opened", None), ("track", "Webinar Attended", None),
             ("track", "Heartbeat", None), ("track", "Demo Requested", None)]  # fmt: skip
    events = []
    for i in range(20_000):
        kind, name, category = rnd.choice(kinds)
        at = T0 + timedelta(seconds=i * 60 + rnd.randrange(-7200, 7200))  # some late
        events.append(
            LeadEvent(
                event_id=f"b{i}",
                lead_id=f"lead-{rnd.randrange(500)}",
                type=EventType(kind),
                name=name,
                page_category=category,
                occurred_at=at,
                received_at=at,
                source="test",
            )
        )
    ref: dict[str, Any] = {}
    nat: dict[str, Any] = {}
    compiled = core.native_core(rules)
    want: list[bytes] = []
    got: list[bytes] = []
    for event in events:
        r = ref.setdefault(event.lead_id, lifecycle.LeadState())
        n = nat.setdefault(event.lead_id, core._native.LeadState())
        want += wire(lifecycle.score_event(r, event, rules)[1])
        got += wire(compiled.score_event(n, event, None))
    assert len(want) > 500  # the stream does move leads
    assert got == want
    assert {k: state_bytes(v) for k, v in nat.items()} == {
        k: state_bytes(v) for k, v in ref.items()
    }


def test_states_move_between_the_cores_through_to_dict(rules: Rules) -> None:
    """A state either core wrote (the changelog) is read by the other and scores on alike."""
    compiled = core.native_core(rules)
    ref = lifecycle.LeadState()
    first = [make_event("l", {"event_id": f"e{i}", "hours": i, "type": "page",
                              "page_category": "pricing"}) for i in range(2)]  # fmt: skip
    for event in first:
        lifecycle.score_event(ref, event, rules)
    raw = orjson.loads(orjson.dumps(ref.to_dict()))
    native = core.state_from_dict(raw, rules) if core.KIND == "native" else None
    if native is None:
        native = core._native.LeadState.from_parts(raw, *engagement_from_dict(raw, rules))
    assert state_bytes(native) == state_bytes(ref)
    assert native.is_seen("e0") and not native.is_seen("e9")
    more = make_event(
        "l", {"event_id": "e2", "hours": 3, "type": "track", "name": "Demo Requested"}
    )
    assert wire(compiled.score_event(native, more, None)) == wire(
        lifecycle.score_event(ref, more, rules)[1]
    )
    back = lifecycle.LeadState.from_dict(orjson.loads(orjson.dumps(native.to_dict())), rules)
    assert state_bytes(back) == state_bytes(ref)


def test_a_state_with_capped_history_survives_the_changelog(rules: Rules) -> None:
    """Capped events (email opens: so many points a day) are stored as JSON lists; a
    worker that restarts reads them back into the compiled core and caps on alike."""
    compiled = core.native_core(rules)
    ref = lifecycle.LeadState()
    opens = [make_event("l", {"event_id": f"o{i}", "hours": i / 4, "type": "track",
                              "name": "Email Opened"}) for i in range(4)]  # fmt: skip
    for event in opens:
        lifecycle.score_event(ref, event, rules)
    raw = orjson.loads(orjson.dumps(ref.to_dict()))  # what the changelog gives back
    assert raw["capped"], "the shipped rules cap email opens"
    restored = core._native.LeadState.from_parts(raw, *engagement_from_dict(raw, rules))
    assert state_bytes(restored) == state_bytes(ref)
    more = make_event("l", {"event_id": "o9", "hours": 2, "type": "track", "name": "Email Opened"})
    assert wire(compiled.score_event(restored, more, None)) == wire(
        lifecycle.score_event(ref, more, rules)[1]
    )
    assert state_bytes(restored) == state_bytes(ref)
    with pytest.raises(ValueError, match=r"capped entry of email-open needs \[at, event_id"):
        broken = {**raw, "capped": {"email-open": {"0": [[1.0, "o1"]]}}}
        core._native.LeadState.from_parts(broken, *engagement_from_dict(raw, rules))


def test_decay_powers_match_the_reference_to_the_last_bit(rules: Rules) -> None:
    """Decay is ``2 ** x`` as C ``pow`` computes it; ``exp2`` (what a compiler may put in
    its place) differs in the last bit for about one time in a thousand, which the
    serialised state would show."""
    compiled = core.native_core(rules)
    rnd = random.Random(11)
    differing = []
    for i in range(4_000):
        ref = lifecycle.LeadState()
        native = core._native.LeadState()
        for j in range(2):
            hours = rnd.uniform(0, 24 * 30)
            event = make_event(
                "l", {"event_id": f"e{j}", "hours": hours, "type": "track", "name": "Email Clicked"}
            )
            lifecycle.score_event(ref, event, rules)
            compiled.score_event(native, event, None)
        if state_bytes(native) != state_bytes(ref):
            differing.append(i)
    assert differing == []


@settings(max_examples=2_000, deadline=None, database=None)
@given(
    pattern=st.text(alphabet="*?ab/.\né", max_size=8),
    text=st.text(alphabet="ab/.\n?*é", max_size=12),
)
def test_url_globs_match_as_fnmatch_does(pattern: str, text: str) -> None:
    """URL matchers (``url: "*/pricing/enterprise*"``) run in the core without calling
    Python; they must say what ``fnmatch.fnmatchcase`` says."""
    assert core._native.url_glob_match(pattern, text) == fnmatch.fnmatchcase(text, pattern)


# Scores are rounded to 6 places and signal points to 3: with values near a tie
# (k + 1/2 at that scale, exact or one ulp away), magnitudes where the fast path gives
# way to the decimal text, and anything else a double can be.
def _near_tie(k: int, digits: int, step: int) -> tuple[float, int]:
    x = (k + 0.5) / 10**digits
    if step:
        x = math.nextafter(x, math.copysign(math.inf, step))
    return x, digits


_near_ties = st.builds(
    _near_tie, st.integers(-(10**9), 10**9), st.sampled_from([3, 6]), st.sampled_from([-1, 0, 1])
)


@settings(max_examples=3_000, deadline=None, database=None)
@given(
    case=st.one_of(
        _near_ties,
        st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([3, 6])),
        st.tuples(st.floats(min_value=-1e12, max_value=1e12), st.sampled_from([3, 6])),
        st.tuples(st.floats(min_value=-1.0, max_value=1.0), st.integers(0, 15)),
    )
)
def test_rounding_matches_python_round(case: tuple[float, int]) -> None:
    """Transition scores are ``round(x, 6)``, signal points ``round(x, 3)``: the core's
    rounding (a fast path, and Python's decimal text near a tie) must give Python's
    result to the last bit, or the transition's bytes differ from the reference's."""
    x, digits = case
    got, want = core._native.py_round(x, digits), round(x, digits)
    assert (got.hex(), str(got)) == (want.hex(), str(want))


def test_transitions_are_built_as_the_reference_builds_them(rules: Rules) -> None:
    """The native core's Transition constructor (no pydantic machinery) makes the same
    object ``lifecycle`` makes: equal, same bytes, same fields set, same field order."""
    args = ("t1", "lead-1", "new", "mql", 55.5, 5.0, 50.5, "score 55.5 >= MQL 50",
            "threshold", False, "e1", None, 1741000000.123456,
            [("pricing", 40.0), ("blog", 10.5)], "a@corp.com", {"title": "VP"})  # fmt: skip
    built = core.native_core(rules).build_transition(*args)
    reference = build_transition(
        transition_id="t1", lead_id="lead-1", from_stage=Stage.NEW, to_stage=Stage.MQL,
        score=55.5, fit=5.0, engagement=50.5, reason="score 55.5 >= MQL 50",
        reason_kind=ReasonKind.THRESHOLD, express=False, trigger_event_id="e1",
        trigger_event=None, occurred_at=datetime.fromtimestamp(1741000000.123456, UTC),
        rules_version=rules.version, email="a@corp.com", traits={"title": "VP"},
        top_signals=[build_signal(signal="pricing", points=40.0),
                     build_signal(signal="blog", points=10.5)],
    )  # fmt: skip
    assert built == reference
    assert built.to_bytes() == reference.to_bytes()
    assert built.model_fields_set == reference.model_fields_set
    assert list(built.__dict__) == list(reference.__dict__)
    assert built.top_signals[0].model_fields_set == reference.top_signals[0].model_fields_set
    assert Transition.model_validate_json(built.to_bytes()) == built
    # What the worker and consumers do with one: stamp it, copy it, pickle it.
    assert type(built.model_fields_set) is set
    again = core.native_core(rules).build_transition(*args)
    assert again.model_fields_set is not built.model_fields_set  # each its own set
    emitted = built.model_copy(update={"emitted_at": T0})
    assert emitted.emitted_at == T0 and "emitted_at" in emitted.model_fields_set
    assert "emitted_at" not in built.model_fields_set
    assert pickle.loads(pickle.dumps(built)) == built


class _OwnNew(Transition):
    """A Transition class with its own ``__new__``: the core makes its instances through
    ``object.__new__`` and ``object.__setattr__``, not in place."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _OwnNew:
        return super().__new__(cls)


def test_transitions_are_built_alike_with_and_without_the_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """For pydantic's models the core makes instances without calling ``object.__new__``
    and ``object.__setattr__`` (what they would do, done in place); for a class whose
    ``__new__`` is its own it calls them. Either way: the reference's transition."""
    args = ("t1", "lead-1", "new", "mql", 55.5, 5.0, 50.5, "score 55.5 >= MQL 50", "threshold",
            False, "e1", "Demo", -1e9 + 0.25, [("pricing", 40.0)], None, {})  # fmt: skip
    direct = core.native_core(load_rules())
    assert direct.builds_directly
    monkeypatch.setitem(core._TRANSITION_MAKER, "transition", _OwnNew)
    calling = core.native_core(load_rules())
    assert not calling.builds_directly
    one, other = direct.build_transition(*args), calling.build_transition(*args)
    assert type(one) is Transition and type(other) is _OwnNew
    for built in (one, other):
        assert built.to_bytes() == one.to_bytes()
        assert list(built.__dict__.items()) == list(one.__dict__.items())
        assert built.model_fields_set == one.model_fields_set
        assert built.__pydantic_extra__ is None and built.__pydantic_private__ is None
    assert one.occurred_at == datetime.fromtimestamp(-1e9 + 0.25, UTC)


def test_transitions_built_in_place_hold_and_release_what_they_should() -> None:
    """Made in place, a transition and its signals hold one reference to each of their
    parts and release them when dropped: the classes, the interned keys and the shared
    values are where they were after thousands of builds."""
    native = core.native_core(load_rules())
    assert native.builds_directly
    signals = [("pricing", 40.0), ("blog", 1.5)]
    args = ("t1", "lead-1", "new", "mql", 55.5, 5.0, 50.5, "score 55.5 >= MQL 50", "threshold",
            False, "e1", "Demo", 1741000000.5, signals, None, {})  # fmt: skip
    watched = (Transition, Signal, Stage.NEW, Stage.MQL, ReasonKind.THRESHOLD)
    shared = (None, False)  # also used all over the interpreter: only a leak per build shows
    native.build_transition(*args)  # anything made once, on first use
    before = [sys.getrefcount(x) for x in watched]
    shared_before = [sys.getrefcount(x) for x in shared]
    built = [native.build_transition(*args) for _ in range(2_000)]
    one = built[0]
    # Counted outside ``assert`` (pytest's rewrite keeps its operands): its slot's and
    # the call's argument's.
    counts = [
        sys.getrefcount(one.__pydantic_fields_set__),
        sys.getrefcount(one.__dict__),
        sys.getrefcount(one.top_signals[0].__pydantic_fields_set__),
        sys.getrefcount(one.top_signals[0].__dict__),
    ]
    assert counts == [2, 2, 2, 2]
    del built, one
    assert [sys.getrefcount(x) for x in watched] == before
    drift = [sys.getrefcount(x) - b for x, b in zip(shared, shared_before, strict=True)]
    assert all(abs(d) < 500 for d in drift), drift  # 2,000 builds: a leak is 2,000 or more


@settings(max_examples=3_000, deadline=None, database=None)
@given(
    t=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=-6.3e10, max_value=2.6e11),
        st.floats(min_value=-1e6, max_value=1e6),
        # Near a microsecond's half, where the rounding (half to even) decides.
        st.builds(lambda n, d: (n + 0.5) / 1e6 + d, st.integers(-(10**17), 10**17),
                  st.sampled_from([0.0, 1e-12, -1e-12])),
    ),
    zone=st.sampled_from([UTC, UTC, UTC, timezone(timedelta(hours=5, minutes=30))]),
)  # fmt: skip
def test_transition_times_are_what_fromtimestamp_gives(t: float, zone: tzinfo) -> None:
    """A transition's ``occurred_at`` is ``datetime.fromtimestamp(t, UTC)``, which the core
    computes itself (years 1-9999; outside them it calls Python, which raises): the same
    datetime to the microsecond, or the same error. Given another zone it makes the call."""
    outcomes = []
    for make in (
        lambda: datetime.fromtimestamp(t, zone),
        lambda: core._native.utc_from_timestamp(t, zone, datetime.fromtimestamp),
    ):
        try:
            made = make()
        except (ValueError, OverflowError, OSError) as error:
            outcomes.append(type(error))
        else:
            outcomes.append((made.isoformat(), made.tzinfo is zone, type(made)))
    assert outcomes[0] == outcomes[1]


def test_batch_scoring_matches_event_by_event_scoring(rules: Rules) -> None:
    """``score_batch`` (what ``baton replay`` runs): the same transitions, states,
    duplicate count and first event times as scoring the events one by one."""
    rnd = random.Random(5)
    events = []
    for i in range(3_000):
        at = T0 + timedelta(minutes=i * 7 + rnd.randrange(-600, 600))
        events.append(
            LeadEvent(
                event_id=f"e{rnd.randrange(1_500)}",  # some ids repeat: duplicates
                lead_id=f"lead-{rnd.randrange(20)}",
                type=EventType.PAGE,
                page_category=rnd.choice(["pricing", "blog", "careers", "product"]),
                occurred_at=at,
                received_at=at,
                source="test",
            )
        )
    ref: dict[str, Any] = {}
    first: dict[str, float] = {}
    want: list[bytes] = []
    duplicates = 0
    for event in events:
        state = ref.setdefault(event.lead_id, lifecycle.LeadState())
        if event.event_id in state.seen:
            duplicates += 1
            continue
        at = event.occurred_at.timestamp()
        first[event.lead_id] = min(at, first.get(event.lead_id, at))
        want += wire(lifecycle.score_event(state, event, rules, at)[1])

    states: dict[str, Any] = {}
    got_first: dict[str, float] = {}
    got: list[bytes] = []
    got_duplicates = 0
    compiled = core.native_core(rules)
    for i in range(0, len(events), 700):
        transitions, dups = compiled.score_batch(states, events[i : i + 700], got_first)
        got += wire(transitions)
        got_duplicates += dups
    assert duplicates > 100 and len(want) > 30
    assert (got, got_duplicates, got_first) == (want, duplicates, first)
    assert {k: state_bytes(v) for k, v in states.items()} == {
        k: state_bytes(v) for k, v in ref.items()
    }


def test_a_rule_that_changes_from_first_time_only_to_a_daily_cap_scores_alike(
    trial_rule_changes: tuple[list[Rules], list[LeadEvent]],
) -> None:
    """Rules change without a restart; a lead's state keeps what earlier rules recorded.
    A rule id that was first-time-only and is now capped per day scores the same way in
    both cores (``test_rules_engine`` checks the reference's points)."""
    ref, native = lifecycle.LeadState(), core._native.LeadState()
    for rules, event in zip(*trial_rule_changes, strict=True):
        lifecycle.score_event(ref, event, rules)
        core.native_core(rules).score_event(native, event, None)
    assert state_bytes(native) == state_bytes(ref)


def test_a_full_dedup_window_forgets_its_oldest_ids_as_the_reference_does(
    rules: Rules,
) -> None:
    """Past ``DEDUP_WINDOW`` ids a lead forgets its oldest, and an id that comes back
    after that is scored again; within the window it is a duplicate. Ids of many lengths,
    so the compiled core's window (ids end to end in one buffer, cut as it forgets) is
    read at every offset. Checked event by event, and the windows' contents at the end."""
    rnd = random.Random(8)
    ref = {lead: lifecycle.LeadState() for lead in ("a", "b")}
    native = {lead: core._native.LeadState() for lead in ("a", "b")}
    compiled = core.native_core(rules)
    duplicates = 0
    for i in range(12 * lifecycle.DEDUP_WINDOW):
        n = rnd.randrange(700)
        at = T0 + timedelta(minutes=i)
        event = LeadEvent(
            event_id=f"e{n}" + "x" * (n % 41),
            lead_id=rnd.choice("ab"),
            type=EventType.PAGE,
            page_category=rnd.choice(["pricing", "blog", "careers"]),
            occurred_at=at,
            received_at=at,
            source="test",
        )
        duplicates += event.event_id in ref[event.lead_id].seen
        want = wire(lifecycle.score_event(ref[event.lead_id], event, rules)[1])
        assert wire(compiled.score_event(native[event.lead_id], event, None)) == want
    assert duplicates > 100  # ids do repeat within a window ...
    for lead in ("a", "b"):
        assert len(ref[lead].recent_event_ids) == lifecycle.DEDUP_WINDOW  # ... and it is full
        assert state_bytes(native[lead]) == state_bytes(ref[lead])
        raw = orjson.loads(orjson.dumps(native[lead].to_dict()))  # through the changelog
        again = core._native.LeadState.from_parts(raw, *engagement_from_dict(raw, rules))
        assert state_bytes(again) == state_bytes(ref[lead])
