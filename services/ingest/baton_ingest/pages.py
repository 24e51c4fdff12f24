"""Page categories from URL paths, so the scorer never parses URLs. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class PageRule:
    """A URL path prefix and the category of the pages under it."""

    prefix: str
    category: str
    subtree: str = field(init=False, repr=False, compare=False)  # "/pricing/" for /pricing

    def __post_init__(self) -> None:
        object.__setattr__(self, "subtree", self.prefix.rstrip("/") + "/")

    def matches(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.subtree)


DEFAULT_PAGE_RULES = (
    PageRule("/pricing", "pricing"),
    PageRule("/demo", "demo"),
    PageRule("/contact-sales", "demo"),
    PageRule("/careers", "careers"),
    PageRule("/jobs", "careers"),
    PageRule("/docs", "docs"),
    PageRule("/blog", "blog"),
    PageRule("/product", "product"),
    PageRule("/features", "product"),
    PageRule("/case-studies", "case_study"),
    PageRule("/customers", "case_study"),
    PageRule("/webinars", "webinar"),
)


def parse_page_rules(text: str) -> tuple[PageRule, ...]:
    """``/pricing=pricing,/careers=careers`` → rules, first match wins."""
    rules = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        prefix, sep, category = item.partition("=")
        if not sep or not prefix.startswith("/") or not category.strip():
            raise ValueError(f"page rule {item!r}: write it as /path=category")
        rules.append(PageRule(prefix.strip().rstrip("/") or "/", category.strip()))
    return tuple(rules)


def category_for(path: str | None, rules: tuple[PageRule, ...]) -> str | None:
    if not path:
        return None
    path = path.lower()
    for rule in rules:  # runs for every event: the test of PageRule.matches, inlined
        if path.startswith(rule.subtree) or path == rule.prefix:
            return rule.category
    return None


def path_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return None


UTM_FIELDS = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "name",
    "utm_term": "term",
    "utm_content": "content",
}


def utm_from_url(url: str | None) -> dict[str, str]:
    """UTM parameters in a page URL, named as Segment's ``context.campaign`` names them."""
    if not url or "utm_" not in url:
        return {}
    try:
        query = parse_qs(urlsplit(url).query)
    except ValueError:
        return {}
    return {name: query[param][0] for param, name in UTM_FIELDS.items() if query.get(param)}
