"""The pool strategies: round robin by turn, smooth weighted round robin, least loaded."""

from __future__ import annotations

import uuid
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from baton_router.strategies import (
    Candidate,
    Strategy,
    assign_least_loaded,
    assign_round_robin,
    assign_smooth_weighted,
    choose,
)


def rep(n: int, last_turn: int | None = None, **kw: object) -> Candidate:
    return Candidate(rep_id=uuid.UUID(int=n), last_turn=last_turn, **kw)  # type: ignore[arg-type]


def test_no_candidates_gives_no_rep() -> None:
    assert assign_round_robin([]) is None
    assert assign_smooth_weighted([]) is None
    assert assign_least_loaded([]) is None
    for strategy in Strategy:
        assert choose(strategy, []) is None


def test_never_assigned_rep_goes_first_even_if_newest() -> None:
    veteran = rep(1, last_turn=3)
    newcomer = rep(9, last_turn=None)
    assert assign_round_robin([veteran, newcomer]) == newcomer
    assert assign_round_robin([newcomer, veteran]) == newcomer


def test_least_recently_served_rep_goes_next() -> None:
    busy, waiting, middle = rep(1, 40), rep(2, 7), rep(3, 20)
    assert assign_round_robin([busy, waiting, middle]) == waiting


def test_ties_are_broken_deterministically_whatever_the_input_order() -> None:
    a, b = rep(1, None), rep(2, None)
    assert assign_round_robin([a, b]) == assign_round_robin([b, a]) == a


def simulate_round_robin(team: list[Candidate], leads: int) -> list[uuid.UUID]:
    pool = {c.rep_id: c for c in team}
    turn = max((c.last_turn or 0 for c in team), default=0)
    order = []
    for _ in range(leads):
        turn += 1
        chosen = assign_round_robin(list(pool.values()))
        assert chosen is not None
        order.append(chosen.rep_id)
        pool[chosen.rep_id] = Candidate(chosen.rep_id, turn)
    return order


turns = st.none() | st.integers(min_value=1, max_value=10_000)


@st.composite
def teams(draw: st.DrawFn) -> list[Candidate]:
    size = draw(st.integers(min_value=1, max_value=8))
    last = draw(st.lists(turns, min_size=size, max_size=size, unique_by=lambda t: t or -1))
    return [rep(n + 1, t) for n, t in enumerate(last)]


@settings(max_examples=80, deadline=None, database=None)
@given(team=teams(), leads=st.integers(min_value=0, max_value=60))
def test_round_robin_spreads_evenly(team: list[Candidate], leads: int) -> None:
    counts = Counter(simulate_round_robin(team, leads))
    per_rep = [counts[c.rep_id] for c in team]
    assert sum(per_rep) == leads
    assert max(per_rep) - min(per_rep) <= 1


@settings(max_examples=60, deadline=None, database=None)
@given(team=teams(), rounds=st.integers(min_value=1, max_value=5))
def test_rep_back_from_holiday_is_not_flooded(team: list[Candidate], rounds: int) -> None:
    """The first rep has been away (its last turn is older than anybody's, or it never
    had one): over the next ``rounds`` rounds it gets one lead per round like everyone
    else, plus at most the one it is owed now. No catch-up on leads missed while away."""
    back = [rep(1, None), *(rep(c.rep_id.int + 1, (c.last_turn or 0) + 10_000) for c in team)]
    counts = Counter(simulate_round_robin(back, rounds * len(back)))
    assert counts[uuid.UUID(int=1)] == rounds
    assert all(n == rounds for n in counts.values())


@st.composite
def weighted_teams(draw: st.DrawFn) -> list[Candidate]:
    weights = draw(st.lists(st.integers(min_value=1, max_value=10), min_size=1, max_size=6))
    return [rep(n + 1, weight=w) for n, w in enumerate(weights)]


def simulate_weighted(team: list[Candidate], leads: int) -> list[uuid.UUID]:
    current = {c.rep_id: c.current for c in team}
    order = []
    for _ in range(leads):
        choice = assign_smooth_weighted(
            [Candidate(c.rep_id, weight=c.weight, current=current[c.rep_id]) for c in team]
        )
        assert choice is not None
        current = choice.current
        order.append(choice.rep_id)
    return order


@settings(max_examples=80, deadline=None, database=None)
@given(team=weighted_teams(), rounds=st.integers(min_value=1, max_value=4))
def test_weighted_gives_each_rep_its_weight_in_every_window(
    team: list[Candidate], rounds: int
) -> None:
    total = sum(c.weight for c in team)
    order = simulate_weighted(team, total * rounds)
    for start in range(0, len(order), total):
        window = Counter(order[start : start + total])
        assert window == {c.rep_id: c.weight for c in team}


def test_weighted_interleaves_rather_than_bursts() -> None:
    a, b, c = rep(1, weight=5), rep(2, weight=1), rep(3, weight=1)
    order = simulate_weighted([a, b, c], 7)
    names = {a.rep_id: "a", b.rep_id: "b", c.rep_id: "c"}
    assert "".join(names[r] for r in order) == "aabacaa"


def test_least_loaded_prefers_spare_capacity_and_never_exceeds_it() -> None:
    full = rep(1, open_leads=3, capacity=3)
    half = rep(2, open_leads=2, capacity=4)
    light = rep(3, open_leads=1, capacity=2)
    assert assign_least_loaded([full, half, light]) == half  # 2/4 < 1/2? equal: turn order
    assert assign_least_loaded([full]) is None
    unlimited = rep(4, open_leads=1)
    assert assign_least_loaded([full, unlimited, rep(5, open_leads=0)]).rep_id == uuid.UUID(int=5)


@settings(max_examples=60, deadline=None, database=None)
@given(
    capacities=st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=6),
    steps=st.lists(st.booleans(), max_size=80),
)
def test_least_loaded_never_puts_a_rep_over_capacity(
    capacities: list[int], steps: list[bool]
) -> None:
    """A random mix of new leads (True) and leads worked off (False)."""
    load = [0] * len(capacities)
    for new_lead in steps:
        team = [rep(i + 1, open_leads=load[i], capacity=cap) for i, cap in enumerate(capacities)]
        if new_lead:
            chosen = assign_least_loaded(team)
            if chosen is None:
                assert all(load[i] >= cap for i, cap in enumerate(capacities))
                continue
            load[chosen.rep_id.int - 1] += 1
        else:
            busiest = max(range(len(load)), key=load.__getitem__)
            load[busiest] = max(0, load[busiest] - 1)
        assert all(load[i] <= cap for i, cap in enumerate(capacities))
