"""Time-decayed engagement: E * 2 ** (-(t - t_ref) / h), order-independent by construction."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baton_scorer.decay import Engagement, falls_below_at

FAST = settings(max_examples=60, deadline=None, database=None)
EPOCH = 1_700_000_000.0  # realistic epoch seconds, so float precision is the production one

half_lives = st.floats(min_value=60.0, max_value=90 * 86_400.0)
positive_points = st.floats(min_value=0.1, max_value=1_000.0)
signed_points = st.floats(min_value=-100.0, max_value=100.0)
# Event times as multiples of the half-life after EPOCH: wide enough for decay to matter,
# narrow enough that no contribution underflows to zero.
offsets = st.floats(min_value=0.0, max_value=20.0)


def build(events: Iterable[tuple[float, float]], h: float) -> Engagement:
    e = Engagement()
    for points, at in events:
        e = e.add(points, at, h)
    return e


def by_definition(events: Iterable[tuple[float, float]], t: float, h: float) -> float:
    """The value at ``t`` straight from the definition: each event decays on its own."""
    return math.fsum(p * 2.0 ** (-(t - at) / h) for p, at in events)


@st.composite
def event_streams(draw: st.DrawFn, points: st.SearchStrategy[float] = positive_points):
    h = draw(half_lives)
    raw = draw(st.lists(st.tuples(points, offsets), min_size=1, max_size=12))
    events = [(p, EPOCH + u * h) for p, u in raw]
    shuffled = draw(st.permutations(events))
    later = max(at for _, at in events) + draw(st.floats(min_value=0.0, max_value=5.0)) * h
    return h, events, shuffled, later


def test_no_events_is_worth_nothing() -> None:
    assert Engagement().at(EPOCH, 86_400.0) == 0.0
    assert falls_below_at(Engagement(), 1.0, 86_400.0) is None


def test_first_event_is_worth_its_points_at_its_own_time() -> None:
    e = Engagement().add(40.0, EPOCH, 86_400.0)
    assert e.at(EPOCH, 86_400.0) == 40.0


@FAST
@given(event_streams())
def test_any_arrival_order_gives_the_same_value_later(stream) -> None:
    h, events, shuffled, later = stream
    in_order = build(sorted(events, key=lambda pe: pe[1]), h).at(later, h)
    arrived = build(shuffled, h).at(later, h)
    assert math.isclose(arrived, in_order, rel_tol=1e-9)
    assert math.isclose(arrived, by_definition(events, later, h), rel_tol=1e-9)


@FAST
@given(event_streams(points=signed_points))
def test_arrival_order_is_irrelevant_with_negative_points_too(stream) -> None:
    h, events, shuffled, later = stream
    scale = math.fsum(abs(p) for p, _ in events)
    in_order = build(sorted(events, key=lambda pe: pe[1]), h).at(later, h)
    arrived = build(shuffled, h).at(later, h)
    assert math.isclose(arrived, in_order, rel_tol=1e-9, abs_tol=1e-9 * scale)


@FAST
@given(event_streams())
def test_reference_time_is_the_latest_event_whatever_the_order(stream) -> None:
    h, events, shuffled, _ = stream
    assert build(shuffled, h).ref_at == max(at for _, at in events)


@FAST
@given(
    value=st.floats(min_value=-1e6, max_value=1e6).filter(lambda v: abs(v) > 1e-6),
    ref=st.floats(min_value=0.0, max_value=10.0),
    since=st.floats(min_value=-3.0, max_value=30.0),
    h=half_lives,
)
def test_value_halves_after_one_half_life(value, ref, since, h) -> None:
    e = Engagement(value, EPOCH + ref * h)
    t = e.ref_at + since * h
    assert math.isclose(e.at(t + h, h), e.at(t, h) / 2, rel_tol=1e-9)
    assert math.isclose(e.at(e.ref_at + 2 * h, h), value / 4, rel_tol=1e-9)


def _brute_force_crossing(e: Engagement, level: float, h: float) -> float:
    """Bisection on ``Engagement.at`` alone: the first time the value is below ``level``."""
    lo, hi = e.ref_at, e.ref_at + h
    while e.at(hi, h) >= level:
        hi = e.ref_at + 2 * (hi - e.ref_at)
    for _ in range(200):
        mid = (lo + hi) / 2
        if e.at(mid, h) < level:
            hi = mid
        else:
            lo = mid
    return hi


@FAST
@given(
    level=st.floats(min_value=0.01, max_value=1_000.0),
    ratio=st.floats(min_value=1.0001, max_value=1e6),
    ref=st.floats(min_value=0.0, max_value=10.0),
    h=half_lives,
)
def test_falls_below_at_matches_a_brute_force_scan(level, ratio, ref, h) -> None:
    e = Engagement(level * ratio, EPOCH + ref * h)
    predicted = falls_below_at(e, level, h)
    assert predicted is not None
    assert predicted > e.ref_at
    assert math.isclose(predicted, _brute_force_crossing(e, level, h), rel_tol=0, abs_tol=1e-6 * h)
    # Just before the predicted time it is still above the level, just after it is below.
    assert e.at(predicted - 1e-3 * h, h) > level
    assert e.at(predicted + 1e-3 * h, h) < level


@pytest.mark.parametrize(
    ("value", "level"),
    [(40.0, 50.0), (50.0, 50.0), (40.0, 0.0), (40.0, -5.0), (-10.0, 5.0)],
    ids=["below", "exactly-at", "zero-level", "negative-level", "negative-value"],
)
def test_falls_below_at_is_none_when_it_never_crosses_from_above(value, level) -> None:
    assert falls_below_at(Engagement(value, EPOCH), level, 86_400.0) is None


@FAST
@given(
    stream=event_streams(),
    late_points=positive_points,
    how_early=st.floats(min_value=0.0, max_value=1.0),
)
def test_late_event_is_exact(stream, late_points, how_early) -> None:
    h, events, _, later = stream
    in_order = sorted(events, key=lambda pe: pe[1])
    first, last = in_order[0][1], in_order[-1][1]
    late = (late_points, first - 1.0 + how_early * (last - first + 1.0))  # at or before last
    assert late[1] <= last

    late_arrival = build(in_order, h).add(*late, h)
    on_time = build(sorted([*events, late], key=lambda pe: pe[1]), h)

    assert late_arrival.ref_at == last  # the reference time never moves backwards
    assert math.isclose(late_arrival.at(later, h), on_time.at(later, h), rel_tol=1e-9)
    assert math.isclose(
        late_arrival.at(later, h), by_definition([*events, late], later, h), rel_tol=1e-9
    )
