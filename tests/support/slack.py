"""A local Slack incoming-webhook receiver for tests: every message is checked against
Slack's documented Block Kit limits (docs.slack.dev/reference/block-kit) and against
``slack_sdk``'s own model validation; the problems found are kept beside the message."""

from __future__ import annotations

from typing import Any

import orjson
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from baton_devstack.webhook_sink import Delivery

BLOCKS_MAX = 50
BLOCK_ID_MAX = 255
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_MAX = 2000
HEADER_TEXT_MAX = 150
CONTEXT_ELEMENTS_MAX = 10
ACTIONS_ELEMENTS_MAX = 25
BUTTON_TEXT_MAX = 75
BUTTON_URL_MAX = 3000
BUTTON_VALUE_MAX = 2000
ACTION_ID_MAX = 255
TEXT_TYPES = {"plain_text", "mrkdwn"}


def block_kit_problems(message: dict[str, Any]) -> list[str]:
    """What Slack would refuse (or cut) in an incoming-webhook message; empty: none."""
    problems: list[str] = []
    if not isinstance(message.get("text"), str) or not message["text"]:
        problems.append("no top-level text (the notification and accessibility fallback)")
    blocks = message.get("blocks") or []
    if len(blocks) > BLOCKS_MAX:
        problems.append(f"{len(blocks)} blocks, over {BLOCKS_MAX}")
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"blocks[{i}] ({block.get('type')})"
        block_id = block.get("block_id")
        if block_id is not None:
            if len(block_id) > BLOCK_ID_MAX or block_id in block_ids:
                problems.append(f"{where}: block_id too long or repeated")
            block_ids.add(block_id)
        problems += [f"{where}: {p}" for p in _block_problems(block, action_ids)]
        try:
            Block.parse(block).validate_json()  # type: ignore[union-attr]
        except (SlackObjectFormationError, AttributeError) as exc:
            problems.append(f"{where}: slack_sdk refuses it: {exc}")
    return problems


def _block_problems(block: dict[str, Any], action_ids: set[str]) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        text = block.get("text") or {}
        return _text(text, HEADER_TEXT_MAX, "text", plain=True)
    if kind == "section":
        out = []
        if "text" not in block and "fields" not in block:
            out.append("a section needs text or fields")
        if "text" in block:
            out += _text(block["text"], SECTION_TEXT_MAX, "text")
        fields = block.get("fields") or []
        if len(fields) > SECTION_FIELDS_MAX:
            out.append(f"{len(fields)} fields, over {SECTION_FIELDS_MAX}")
        for j, field in enumerate(fields):
            out += _text(field, SECTION_FIELD_MAX, f"fields[{j}]")
        return out
    if kind == "context":
        elements = block.get("elements") or []
        out = [] if 1 <= len(elements) <= CONTEXT_ELEMENTS_MAX else ["context: 1 to 10 elements"]
        for j, element in enumerate(elements):
            out += _text(element, SECTION_TEXT_MAX, f"elements[{j}]")
        return out
    if kind == "actions":
        elements = block.get("elements") or []
        out = [] if 1 <= len(elements) <= ACTIONS_ELEMENTS_MAX else ["actions: 1 to 25 elements"]
        for j, element in enumerate(elements):
            out += [f"elements[{j}]: {p}" for p in _button(element, action_ids)]
        return out
    if kind == "divider":
        return []
    return [f"a block type this check does not know: {kind}"]


def _button(element: dict[str, Any], action_ids: set[str]) -> list[str]:
    if element.get("type") != "button":
        return [f"not a button: {element.get('type')}"]
    out = _text(element.get("text") or {}, BUTTON_TEXT_MAX, "text", plain=True)
    action_id = element.get("action_id") or ""
    if not action_id or len(action_id) > ACTION_ID_MAX or action_id in action_ids:
        out.append(f"action_id {action_id!r} missing, too long or not unique")
    action_ids.add(action_id)
    url = element.get("url")
    if url is not None and (len(url) > BUTTON_URL_MAX or not url.startswith("http")):
        out.append(f"url not an http(s) URL of at most {BUTTON_URL_MAX} characters")
    if len(element.get("value") or "") > BUTTON_VALUE_MAX:
        out.append(f"value over {BUTTON_VALUE_MAX} characters")
    if element.get("style") not in (None, "primary", "danger"):
        out.append(f"style {element['style']!r}")
    return out


def _text(obj: dict[str, Any], limit: int, name: str, plain: bool = False) -> list[str]:
    kind, text = obj.get("type"), obj.get("text")
    if kind not in TEXT_TYPES or (plain and kind != "plain_text"):
        return [f"{name}: text object of type {kind!r}"]
    if not isinstance(text, str) or not 1 <= len(text) <= limit:
        return [f"{name}: text of {len(text or '')} characters, outside 1..{limit}"]
    return []


def checked(delivery: Delivery) -> tuple[dict[str, Any], list[str]]:
    """A delivery's message and its Block Kit problems."""
    message = orjson.loads(delivery.body)
    return message, block_kit_problems(message)
