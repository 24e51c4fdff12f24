"""Qualification frameworks as the gate: each built-in framework's gate holds a lead at MQL
until reps have confirmed every one of its fields, on both scoring cores; custom
frameworks, BANT-era rules files, and the rules errors that name what is wrong."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from baton_scorer import core, lifecycle
from baton_scorer.rules import Rules, RulesError, parse_rules
from baton_shared.qualification import FRAMEWORKS, foreign_fields
from baton_shared.schemas import LeadEvent, ReasonKind, Stage, Transition
from tests.scorer.conftest import T0, MakeEvent

ScoreFn = Callable[[Any, LeadEvent, Rules], list[Transition]]
ActFn = Callable[..., list[Transition]]


def python_core() -> tuple[Any, ScoreFn, ActFn]:
    def act(*args: Any, **kwargs: Any) -> list[Transition]:
        return lifecycle.apply_rep_action(*args, **kwargs)[1]

    return lifecycle.LeadState(), lambda s, e, r: lifecycle.score_event(s, e, r)[1], act


def native_core() -> tuple[Any, ScoreFn, ActFn]:
    if core._native is None:
        pytest.skip("baton_scorer_native is not built (make install builds it)")

    def act(*args: Any, **kwargs: Any) -> list[Transition]:
        return core.native_rep_action(*args, **kwargs)[1]

    def score(state: Any, event: LeadEvent, rules: Rules) -> list[Transition]:
        return list(core.native_core(rules).score_event(state, event, None))

    return core._native.LeadState(), score, act


CORES = {"python": python_core, "native": native_core}


def gated(framework: str, extra: str = "") -> Rules:
    text = (
        f"name: gate-{framework}\nexpress_lanes: [Demo Requested]\n"
        f"qualification:\n  required: true\n  framework: {framework}\n{extra}"
    )
    return parse_rules(text, "rules.yaml")


def confirm(act: ActFn, state: Any, rules: Rules, n: int, fields: tuple[str, ...]) -> list:
    at = (T0 + timedelta(minutes=n)).timestamp()
    return act(state, "lead-1", f"q{n}", "qualified", at, rules, bant=fields)


@pytest.mark.parametrize("which", CORES)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_each_framework_gate_makes_sql_only_once_every_field_is_confirmed(
    framework: str, which: str, make_event: MakeEvent
) -> None:
    rules = gated(framework)
    fields = FRAMEWORKS[framework]
    state, score, act = CORES[which]()
    [mql] = score(state, make_event("track", name="Demo Requested"), rules)
    assert mql.to_stage == Stage.MQL
    assert f"SQL awaits qualification ({', '.join(fields)})" in mql.reason

    # Another framework's fields (the ones this one lacks) open nothing.
    others = sorted({f for fs in FRAMEWORKS.values() for f in fs} - set(fields))
    assert confirm(act, state, rules, 1, tuple(others)) == []
    for n, field in enumerate(fields[:-1], start=2):  # one by one, all but the last
        assert confirm(act, state, rules, n, (field,)) == []
    [sql] = confirm(act, state, rules, 99, (fields[-1],))
    assert (sql.from_stage, sql.to_stage) == (Stage.MQL, Stage.SQL)
    assert sql.reason_kind == ReasonKind.QUALIFICATION
    assert sql.trigger_event_id == "q99"


@pytest.mark.parametrize("which", CORES)
def test_a_custom_framework_gates_on_its_own_fields(which: str, make_event: MakeEvent) -> None:
    rules = gated("spiced", "  frameworks: {spiced: [situation, pain, impact]}\n")
    state, score, act = CORES[which]()
    [mql] = score(state, make_event("track", name="Demo Requested"), rules)
    assert "awaits qualification (situation, pain, impact)" in mql.reason
    assert confirm(act, state, rules, 1, ("situation", "pain", "budget")) == []
    [sql] = confirm(act, state, rules, 2, ("impact",))
    assert sql.to_stage == Stage.SQL


def test_a_bant_era_rules_file_still_gates_on_its_bant_list() -> None:
    rules = parse_rules("name: old\nqualification: {required: true, bant: [budget, need]}\n")
    assert rules.qualification.framework == "bant"
    assert rules.qualification.gate_fields == ("budget", "need")
    assert gated("bant").qualification.gate_fields == FRAMEWORKS["bant"]


@pytest.mark.parametrize(
    ("section", "words"),
    [
        (
            "framework: medic",
            "line 3: qualification.framework: unknown qualification framework 'medic'; "
            "use bant, meddic, meddpicc, champ, gpctba or define it under "
            "qualification.frameworks",
        ),
        ("framework: meddic, bant: [budget]", "framework 'meddic' takes none"),
        ("frameworks: {champ: [money]}", "'champ' is a built-in framework"),
        ("frameworks: {mine: [Big Deal]}", "'Big Deal' is not a slug"),
        ("frameworks: {mine: []}", "framework 'mine' needs 1 to 32 fields"),
    ],
)
def test_a_bad_qualification_section_is_refused_naming_what_is_wrong(
    section: str, words: str
) -> None:
    with pytest.raises(RulesError, match=r"rules\.yaml line") as refused:
        parse_rules(f"name: bad\n\nqualification: {{required: true, {section}}}\n", "rules.yaml")
    assert words in str(refused.value)


def test_foreign_fields_are_checked_against_built_ins_and_as_slugs_otherwise() -> None:
    assert foreign_fields("meddic", ["champion", "budget"]) == ["budget"]
    assert foreign_fields("gpctba", FRAMEWORKS["gpctba"]) == []
    assert foreign_fields("spiced", ["pain", "Critical Event"]) == ["Critical Event"]
