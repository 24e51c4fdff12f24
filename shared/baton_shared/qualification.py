"""Qualification frameworks: the named sets of fields a rep confirms on a lead.

The scorer's rules name the framework their gate requires (``qualification.framework``,
custom ones defined in the rules file); a ``qualified`` activity names the framework its
``fields`` belong to, and the router's API checks them against :data:`FRAMEWORKS`. A
field is a slug (``economic_buyer``); the same name means the same thing in every
framework (BANT's ``budget`` is GPCTBA's ``budget``), so a confirmed field counts for any
gate that lists it.

The built-ins, as their authors define them:

* ``bant``: Budget, Authority, Need, Timeline (IBM's original).
* ``meddic``: Metrics, Economic buyer, Decision criteria, Decision process, Identify
  pain, Champion (Jack Napoli and Dick Dunkel, PTC); ``meddpicc`` adds Paper process
  and Competition.
* ``champ``: CHallenges, Authority, Money, Prioritization (InsightSquared).
* ``gpctba``: Goals, Plans, Challenges, Timeline, Budget, Authority — the fields of
  HubSpot's GPCTBA/C&I ("Goals, Plans, Challenges, Timeline, Budget, Authority, Negative
  Consequences, and Positive Implications", https://www.clay.com/glossary/gpctba-c-i).
  Its C&I are discovery questions rather than facts to confirm, so they are not fields
  here; a gate that wants them defines a custom framework.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

BANT = "bant"

FRAMEWORKS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        BANT: ("budget", "authority", "need", "timeline"),
        "meddic": (
            "metrics",
            "economic_buyer",
            "decision_criteria",
            "decision_process",
            "identify_pain",
            "champion",
        ),
        "meddpicc": (
            "metrics",
            "economic_buyer",
            "decision_criteria",
            "decision_process",
            "paper_process",
            "identify_pain",
            "champion",
            "competition",
        ),
        "champ": ("challenges", "authority", "money", "prioritization"),
        "gpctba": ("goals", "plans", "challenges", "timeline", "budget", "authority"),
    }
)
"""Built-in framework name -> its fields, in the order reps are usually taught them."""

MAX_FIELDS = 32
"""At most this many fields in one framework or one ``qualified`` activity."""

_SLUG = re.compile(r"[a-z][a-z0-9_]{0,63}")


def is_slug(name: str) -> bool:
    """Whether ``name`` can name a framework or a field: lowercase letters, digits and
    ``_``, starting with a letter, at most 64 characters."""
    return _SLUG.fullmatch(name) is not None


def not_slugs(names: Iterable[str]) -> list[str]:
    """The names in ``names`` that are not slugs."""
    return [name for name in names if not is_slug(name)]


def foreign_fields(framework: str, fields: Iterable[str]) -> list[str]:
    """The fields that do not belong to built-in ``framework`` (all of them are
    checked as slugs only when the framework is not built in)."""
    known = FRAMEWORKS.get(framework)
    if known is None:
        return not_slugs(fields)
    return [field for field in fields if field not in known]


def built_in_names() -> str:
    """The built-in frameworks, for messages: ``bant, meddic, ...``."""
    return ", ".join(FRAMEWORKS)
