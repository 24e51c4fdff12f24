"""The alert rules load in Prometheus (``promtool check rules``), behave as their unit
tests say (``promtool test rules`` on tests/deploy/alerts_test.yml: what users feel
alerts, a single SLA breach does not), and the Helm chart ships the same rules."""

from __future__ import annotations

from tests.deploy.tools import ROOT, run, tool

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
CHART_RULES = ROOT / "deploy" / "helm" / "baton" / "files" / "alerts.yml"


def test_promtool_accepts_the_rules() -> None:
    run(tool("promtool"), "check", "rules", str(RULES))


def test_rule_unit_tests_pass() -> None:
    run(tool("promtool"), "test", "rules", str(ROOT / "tests" / "deploy" / "alerts_test.yml"))


def test_the_chart_ships_the_compose_rules() -> None:
    assert CHART_RULES.read_text() == RULES.read_text(), f"cp {RULES} {CHART_RULES}"
