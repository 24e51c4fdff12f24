"""The annotated rules example in docs/examples/rules.yaml is true: it loads, and it shows
every field the rules format accepts (so a new field cannot ship undocumented)."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from baton_scorer.rules import Rules, parse_rules

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "rules.yaml"


def example_text() -> str:
    return EXAMPLE.read_text()


def submodels(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return [m for arg in typing.get_args(annotation) for m in submodels(arg)]
    return []


def collect(
    model: type[BaseModel], instances: list[dict], found: dict[type[BaseModel], list[dict]]
) -> None:
    """Every YAML mapping of the example, grouped by the model it validates to."""
    found.setdefault(model, []).extend(instances)
    for name, info in model.model_fields.items():
        nested = submodels(info.annotation)
        if not nested:
            continue
        mappings = []
        for instance in instances:
            value = instance.get(name)
            if name == "groups" and isinstance(value, dict):
                value = list(value.values())  # name -> Group
            items = value if isinstance(value, list) else [value]
            mappings += [x for x in items if isinstance(x, dict)]
        collect(nested[0], mappings, found)


def missing_fields(example: dict) -> list[str]:
    """Fields of the rules format that no mapping of ``example`` shows."""
    found: dict[type[BaseModel], list[dict]] = {}
    collect(Rules, [example], found)
    return [
        f"{model.__name__}.{name}"
        for model, instances in found.items()
        for name in model.model_fields
        if name != "content_hash" and not any(name in i for i in instances)
    ]


def test_rules_example_loads() -> None:
    rules = parse_rules(example_text(), str(EXAMPLE))
    assert rules.version.startswith("acme-2025q3@")
    assert rules.compiled.rules["email-open"].cap_points == 5
    assert rules.qualification.bant == ["budget", "authority", "need", "timeline"]


def test_rules_example_shows_every_field() -> None:
    example = yaml.safe_load(example_text())
    assert missing_fields(example) == []
