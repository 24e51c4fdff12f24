"""Where in a YAML document a pydantic validation error is: the line of the field.

:func:`describe` turns a :class:`pydantic.ValidationError` into one line per error,
``rules.yaml line 12: engagement.rules[0].points: Input should be a valid number``,
using the document's node tree (``yaml.compose``) to find each field's line.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError


def describe(exc: ValidationError, root: yaml.Node | None, origin: str) -> str:
    """Each error of ``exc`` on a line: where (``origin`` and line), the field, what is wrong."""
    lines = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p in UNION_TAGS)]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        line = line_of(root, loc)
        where = f"{origin} line {line}" if line else origin
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {path or '(top level)'}: {message}")
    return "\n".join(lines)


# pydantic puts a union member's name in the location; the YAML has no such level.
UNION_TAGS = {"str", "Match", "list[str]", "function-after[_not_empty(), Match]"}


def line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """1-based line of the deepest YAML node on ``loc`` (the field, or its parent if absent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == part), None)
            key = next((k for k, v in node.value if k.value == part), None)
            if found is None:
                return line
            line = key.start_mark.line + 1 if key is not None else line
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
