"""README.md and docs/ stay true: every relative link (and its #anchor) resolves, the
examples in the pages run against the code, and no page carries history."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from baton_router.signing import new_secret, signed_headers
from baton_shared.sla_policy import parse_policy

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    headings = re.findall(r"^#+\s+(.+?)\s*$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.replace("`", "").lower()).replace(" ", "-") for h in headings}


def code_blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(), re.DOTALL)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(target)
    assert broken == []


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    assert [p.name for p in PAGES[1:] if f"(docs/{p.name}" not in readme] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_history_in_the_docs(page: Path) -> None:
    assert re.findall(r"\b[Ss]top [0-9]+\b", page.read_text()) == []


def test_readme_stays_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_the_sla_policy_example_is_valid() -> None:
    (example,) = code_blocks(ROOT / "docs" / "sla.md", "yaml")
    policy = parse_policy(example, "docs/sla.md")
    assert policy.teams["enterprise"].assign_seconds == 120


def test_the_webhook_verification_example_checks_the_routers_signature() -> None:
    blocks = code_blocks(ROOT / "docs" / "routing.md", "python")
    (snippet,) = [b for b in blocks if "def verify" in b]
    namespace: dict = {}
    exec(snippet, namespace)  # the documented example itself
    verify = namespace["verify"]
    secret, body = new_secret(), b'{"type": "lead.assigned"}'
    headers = signed_headers(secret, "msg_1", int(time.time()), body)
    verify(secret, headers, body)
    with pytest.raises(ValueError, match="signature"):
        verify(secret, headers, body + b" ")
    with pytest.raises(ValueError, match="signature"):
        verify(new_secret(), headers, body)
    stale = signed_headers(secret, "msg_1", int(time.time()) - 3600, body)
    with pytest.raises(ValueError, match="stale"):
        verify(secret, stale, body)


def test_the_configuration_table_lists_every_setting() -> None:
    from baton_ingest.config import IngestSettings
    from baton_router.config import RouterSettings
    from baton_scorer.config import ScorerSettings
    from baton_sla_monitor.config import SlaSettings

    names = {"BATON_SCORER_CORE", "BATON_DEVSTACK_DIR", "BATON_CACHE_DIR"}
    for settings in (IngestSettings, RouterSettings, ScorerSettings, SlaSettings):
        names |= {f.alias for f in settings.model_fields.values() if f.alias}
    table = (ROOT / "docs" / "operations.md").read_text()
    assert sorted(n for n in names if f"`{n}`" not in table) == []
