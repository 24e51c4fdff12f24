"""YAML in and out, with line numbers: a problem's path in the document becomes the line
of the file it is on.

:func:`load` parses once, keeping each node's line (:class:`Lines`); a YAML syntax error
or a key given twice is a :class:`~.model.DocumentInvalid` already. :func:`dump` writes
a document the way ``export`` shows it: keys in the file's order, one account per line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from baton_router.config_file.model import DocumentInvalid, Loc, Problem, field_path

HEADER = """\
# Baton routing configuration: `baton routing apply FILE` makes the router's database
# match this file (docs/routing.md#configuration-as-code). Secrets are not in it:
# `webhook_secret: {env: NAME}` reads one from the environment on apply.
"""


class Lines:
    """The 1-based line of each path in the document."""

    def __init__(self) -> None:
        self._lines: dict[Loc, int] = {}

    def add(self, loc: Loc, line: int) -> None:
        self._lines.setdefault(loc, line)

    def line_of(self, loc: Loc) -> int:
        """The line of ``loc``, or of its nearest enclosing node the file has."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self._lines:
                return self._lines[loc[:end]]
        return 1


class LocatedInvalid(DocumentInvalid):
    """Problems with their lines, for a message naming file, line and field."""

    def __init__(self, path: Path | str, problems: list[Problem], lines: Lines):
        super().__init__(problems)
        self.messages = [
            f"{path}:{p.line or lines.line_of(p.loc)}: {field_path(p.loc)}: {p.message}"
            for p in problems
        ]

    def __str__(self) -> str:
        return "\n".join(self.messages)


def load(path: Path) -> tuple[Any, Lines]:
    """The file's data and its lines; :class:`LocatedInvalid` on a YAML error."""
    text = path.read_text(encoding="utf-8")
    lines = Lines()
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = Problem((), f"not valid YAML: {exc.problem}", mark.line + 1 if mark else 1)
        raise LocatedInvalid(path, [problem], lines) from None
    finally:
        loader.dispose()
    problems: list[Problem] = []
    if node is not None:
        _index(node, (), lines, problems)
    if problems:
        raise LocatedInvalid(path, problems, lines)
    return data, lines


def _index(node: yaml.Node, loc: Loc, lines: Lines, problems: list[Problem]) -> None:
    lines.add(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                line = key_node.start_mark.line + 1
                problems.append(Problem((*loc, key), "given twice", line))
            seen.add(key)
            lines.add((*loc, key), key_node.start_mark.line + 1)
            _index(value_node, (*loc, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*loc, i), lines, problems)


class _OneLine(dict[str, Any]):
    """A mapping written on one line: an account, a rule condition."""


class _Dumper(yaml.SafeDumper):
    """Block style, but flat lists, accounts and conditions on one line each."""

    def represent_list(self, data: list[Any]) -> yaml.Node:
        flat = all(not isinstance(v, dict | list) for v in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat or None)

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # list items indented under their key


_Dumper.add_representer(list, _Dumper.represent_list)
_Dumper.add_representer(
    _OneLine, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)
)


def dump(document: dict[str, Any]) -> str:
    """The document as YAML, after :data:`HEADER`."""
    shaped = {
        **document,
        "accounts": [_OneLine(a) for a in document.get("accounts", [])],
        **{
            section: [
                {**e, "conditions": [_OneLine(c) for c in e["conditions"]]}
                if "conditions" in e else e
                for e in document.get(section, [])
            ]
            for section in ("rules", "nurture_tracks")
        },
    }  # fmt: skip
    return HEADER + yaml.dump(
        shaped, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )
