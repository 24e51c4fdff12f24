"""What one event is worth: the engagement rules it matches, and fit points. Pure."""

from __future__ import annotations

from typing import Any

from baton_scorer.rules import CompiledRule, Rules
from baton_shared.schemas import LeadEvent


def matching_rules(event: LeadEvent, rules: Rules) -> list[CompiledRule]:
    """Every engagement rule the event matches (each one counts).

    Shorthand ``events`` match track events by name; ``pages`` match page/screen
    views by page category; full ``rules`` match on their ``match`` block.
    """
    plan = rules.compiled.plan(event)
    if not plan.dynamic:
        return list(plan.static)
    return [*plan.static, *(r for r in plan.dynamic if r.match and r.match.matches(event))]


def engagement_points(event: LeadEvent, rules: Rules) -> float:
    """Points the event is worth before caps and decay."""
    return sum(rule.points for rule in matching_rules(event, rules))


def email_domain(email: str | None) -> str | None:
    if email and "@" in email:
        return email.rsplit("@", 1)[1].lower()
    return None


def fit_points(traits: dict[str, Any], email: str | None, rules: Rules) -> float:
    """Points from who the lead is: title, company size, industry, country, email domain.

    Each attribute counts once (the first matching pattern or range). Fit does not decay.
    The company's size and industry may come from Segment's ``company`` object too (where
    a ``group`` call's traits land); a top-level trait wins.
    """
    fit = rules.fit
    names = fit.traits
    total = 0.0
    title = traits.get(names.title)
    if isinstance(title, str):
        for pattern, points in rules.title_patterns:
            if pattern.search(title):
                total += points
                break
    company = traits.get("company")
    company = company if isinstance(company, dict) else {}
    size = traits.get(names.company_size, company.get(names.company_size))
    if isinstance(size, int | float) and not isinstance(size, bool):
        for r in fit.company_size:
            if (r.min is None or size >= r.min) and (r.max is None or size <= r.max):
                total += r.points
                break
    total += _lookup(fit.industry, traits.get(names.industry, company.get(names.industry)))
    total += _lookup(fit.country, traits.get(names.country))
    domain = email_domain(email)
    if domain:
        if domain in fit.email_domains.free_mail:
            total += fit.email_domains.free_mail_points
        total += fit.email_domains.points.get(domain, 0.0)
    return total


def _lookup(table: dict[str, float], value: Any) -> float:
    if not isinstance(value, str) or not table:
        return 0.0
    if value in table:
        return table[value]
    lowered = value.lower()
    return next((pts for key, pts in table.items() if key.lower() == lowered), 0.0)


def is_competitor(email: str | None, rules: Rules) -> bool:
    """A competitor's email domain disqualifies the lead."""
    competitors = rules.compiled.competitors
    if not competitors or not email:
        return False
    domain = email_domain(email)
    return domain is not None and domain in competitors


def express_lane(event: LeadEvent, rules: Rules) -> str | None:
    """The express lane the event is on (its label), or None.

    Names in ``express_lanes`` are track events; mappings are full matchers.
    """
    plan = rules.compiled.plan(event)
    if plan.express is not None:
        return plan.express
    for m in plan.express_matches:
        if m.matches(event):
            return plan.express_label
    return None


def is_express(event: LeadEvent, rules: Rules) -> bool:
    """A track event on an express lane makes the lead SQL at once."""
    return express_lane(event, rules) is not None
