"""Scoring rules: loading, validation with useful errors, versioning, and what events are worth."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from baton_scorer.points import engagement_points, fit_points, is_express
from baton_scorer.rules import Rules, RulesError, load_rules, parse_rules
from baton_shared.schemas import EventType

DEFAULT_TEXT = files("baton_scorer").joinpath("default_rules.yaml").read_text()
DEFAULT_YAML = yaml.safe_load(DEFAULT_TEXT)

MINIMAL = "name: acme\n"


def test_shipped_defaults_load_as_written(rules: Rules) -> None:
    assert rules.name == DEFAULT_YAML["name"]
    assert rules.thresholds.mql == DEFAULT_YAML["thresholds"]["mql"]
    assert rules.thresholds.sql == DEFAULT_YAML["thresholds"]["sql"]
    assert rules.engagement.events == DEFAULT_YAML["engagement"]["events"]
    assert rules.engagement.pages == DEFAULT_YAML["engagement"]["pages"]
    assert rules.express_lanes == DEFAULT_YAML["express_lanes"]
    assert rules.half_life_seconds == DEFAULT_YAML["engagement"]["half_life_days"] * 86_400


def test_defaults_version_is_name_at_hash(rules: Rules) -> None:
    name, _, digest = rules.version.partition("@")
    assert name == DEFAULT_YAML["name"]
    assert re.fullmatch(r"[0-9a-f]{8,64}", digest), rules.version


def test_same_text_gives_same_version_and_any_edit_changes_it() -> None:
    assert parse_rules(DEFAULT_TEXT).version == load_rules().version
    edited = DEFAULT_TEXT.replace("pricing: 40", "pricing: 41")
    assert edited != DEFAULT_TEXT
    edited_version = parse_rules(edited).version
    assert edited_version != load_rules().version
    assert edited_version.startswith(f"{DEFAULT_YAML['name']}@")
    # Even a comment-only edit is a new version: the version names the exact text.
    assert parse_rules(DEFAULT_TEXT + "\n# tweak\n").version != load_rules().version


def test_load_rules_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(MINIMAL + "thresholds: {mql: 10, sql: 20}\n")
    loaded = load_rules(path)
    assert loaded.name == "acme"
    assert (loaded.thresholds.mql, loaded.thresholds.sql) == (10, 20)


def test_invalid_yaml_is_a_rules_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: acme\nthresholds: [mql: 1\n")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert str(path) in str(caught.value)
    assert "YAML" in str(caught.value)


@pytest.mark.parametrize("text", ["", "just a string\n", "- a\n- list\n"])
def test_rules_that_are_not_a_mapping_are_refused(text: str) -> None:
    with pytest.raises(RulesError, match="mapping"):
        parse_rules(text, "custom.yaml")


@pytest.mark.parametrize(("mql", "sql"), [(50, 50), (80, 40)])
def test_sql_threshold_not_above_mql_is_refused(mql: float, sql: float) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(MINIMAL + f"thresholds: {{mql: {mql}, sql: {sql}}}\n", "custom.yaml")
    message = str(caught.value)
    assert "custom.yaml" in message
    assert "thresholds.sql" in message
    assert "thresholds.mql" in message


def test_bad_title_regex_is_refused_naming_the_pattern() -> None:
    text = MINIMAL + "fit:\n  title:\n    '(unclosed': 10\n"
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "custom.yaml")
    assert "fit.title" in str(caught.value)
    assert "(unclosed" in str(caught.value)


def test_type_error_names_the_file_line_and_field() -> None:
    text = MINIMAL + "engagement:\n  events:\n    Webinar Attended: lots\n"
    line = text.splitlines().index("    Webinar Attended: lots") + 1
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "custom.yaml")
    message = str(caught.value)
    assert f"custom.yaml line {line}" in message
    assert "engagement.events.Webinar Attended" in message


def test_unknown_field_is_refused_naming_it() -> None:
    with pytest.raises(RulesError, match="threshold"):
        parse_rules(MINIMAL + "threshold: {mql: 1, sql: 2}\n")


def test_missing_name_is_refused() -> None:
    with pytest.raises(RulesError, match="name"):
        parse_rules("thresholds: {mql: 1, sql: 2}\n")


@pytest.mark.parametrize("days", [0, -1])
def test_half_life_must_be_positive(days: float) -> None:
    with pytest.raises(RulesError, match="half_life_days"):
        parse_rules(MINIMAL + f"engagement: {{half_life_days: {days}}}\n")


def test_rules_error_is_a_value_error() -> None:
    assert issubclass(RulesError, ValueError)


# --- points: what one event is worth -------------------------------------------------------


def test_track_event_is_worth_its_named_points(rules: Rules, make_event) -> None:
    for name, points in rules.engagement.events.items():
        assert engagement_points(make_event("track", name=name), rules) == points


def test_page_view_is_worth_its_category_points(rules: Rules, make_event) -> None:
    for category, points in rules.engagement.pages.items():
        for kind in (EventType.PAGE, EventType.SCREEN):
            event = make_event(kind, page_category=category)
            assert engagement_points(event, rules) == points


def test_unknown_events_and_identify_calls_are_worth_nothing(rules: Rules, make_event) -> None:
    assert engagement_points(make_event("track", name="Never Heard Of It"), rules) == 0
    assert engagement_points(make_event("page", page_category=None), rules) == 0
    # A track event is scored by name only, not by the page it happened on.
    assert engagement_points(make_event("track", name="Nope", page_category="pricing"), rules) == 0
    assert engagement_points(make_event("identify", traits={"title": "CEO"}), rules) == 0


def test_title_fit_takes_the_first_matching_pattern_case_insensitively() -> None:
    rules = parse_rules(
        MINIMAL + "fit:\n  title:\n    '\\bdirector\\b': 20\n    '\\bmanager\\b': 10\n"
    )
    assert fit_points({"title": "DIRECTOR of Sales"}, None, rules) == 20
    assert fit_points({"title": "Director, Manager of managers"}, None, rules) == 20
    assert fit_points({"title": "Account Manager"}, None, rules) == 10
    assert fit_points({"title": "Engineer"}, None, rules) == 0
    assert fit_points({"title": 42}, None, rules) == 0


def test_free_mail_domain_costs_fit_points(rules: Rules) -> None:
    penalty = rules.fit.email_domains.free_mail_points
    assert penalty < 0
    for domain in rules.fit.email_domains.free_mail:
        assert fit_points({}, f"someone@{domain}", rules) == penalty
    assert fit_points({}, "someone@acme-corp.example", rules) == 0
    assert fit_points({}, "not-an-email", rules) == 0


def test_express_lanes_are_track_events_only(rules: Rules, make_event) -> None:
    lane = rules.express_lanes[0]
    assert is_express(make_event("track", name=lane), rules)
    assert not is_express(make_event("page", name=lane), rules)
    assert not is_express(make_event("track", name="Newsletter Subscribed"), rules)
