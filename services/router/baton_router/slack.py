"""Slack messages: an assignment as Block Kit, built with Slack's ``slack_sdk`` models.

:func:`assignment_message` turns the webhook body of a ``lead.assigned`` /
``lead.sdr_task`` (``payloads.assignment_payload``) into an incoming-webhook message: who
the lead is, why it is hot, the SLA due time, and the one-click links as buttons. Every
text is cut to Slack's documented limits, so a lead with long traits still posts. Pure:
plain data in, the JSON body out; the outbox delivers it (``dispatcher.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

# Slack's Block Kit limits (docs.slack.dev/reference/block-kit).
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
FIELDS_MAX = 10
CONTEXT_ELEMENTS_MAX = 10
BUTTON_TEXT_MAX = 75
URL_MAX = 3000
FALLBACK_TEXT_MAX = 3000  # the notification text; Slack truncates long ones
TOP_SIGNALS = 5

BUTTONS = (  # link action, label, style
    ("accept", "Accept", "primary"),
    ("contacted", "Contacted", None),
    ("reject", "Reject…", "danger"),
)


def assignment_message(payload: dict[str, Any]) -> dict[str, Any]:
    """The incoming-webhook body (``text`` and ``blocks``) for an assignment payload."""
    data = payload["data"]
    lead = data.get("lead") or {}
    who = _who(lead)
    sdr_task = payload.get("type") == "lead.sdr_task"
    title = "New SDR task" if sdr_task else "New lead assigned to you"
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_cut(f"{title}: {who}", HEADER_MAX))),
        SectionBlock(text=MarkdownTextObject(text=_cut(_why_hot(data), SECTION_TEXT_MAX))),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=_cut(f"*{name}*\n{_escape(value)}", FIELD_TEXT_MAX))
                for name, value in _facts(data, lead)[:FIELDS_MAX]
            ]
        ),
    ]
    links = data.get("links") or {}
    buttons = [
        ButtonElement(
            text=PlainTextObject(text=_cut(label, BUTTON_TEXT_MAX)),
            action_id=f"baton_{action}",
            url=links[action],
            style=style,
        )
        for action, label, style in BUTTONS
        if len(links.get(action) or "") <= URL_MAX and links.get(action)
    ]
    if buttons:
        blocks += [DividerBlock(), ActionsBlock(block_id="baton_actions", elements=buttons)]
    notes = [f"Assignment `{data.get('assignment_id', '')}`"]
    if links.get("expires_at"):
        notes.append(f"links work until {_when(links['expires_at'])}")
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text=" · ".join(notes))][:CONTEXT_ELEMENTS_MAX])
    )
    fallback = f"{title}: {who} (score {_number(data.get('score'))})"
    return {
        "text": _cut(_escape(fallback), FALLBACK_TEXT_MAX),
        "blocks": [block.to_dict() for block in blocks],
    }


def _who(lead: dict[str, Any]) -> str:
    traits = lead.get("traits") or {}
    name = traits.get("name") or lead.get("email") or lead.get("lead_id") or "a lead"
    company = traits.get("company") or lead.get("domain")
    return f"{name} ({company})" if company else str(name)


def _why_hot(data: dict[str, Any]) -> str:
    lines = [f"*Why it is hot:* {_escape(data.get('reason') or 'qualified')}"]
    if data.get("trigger_event"):
        lines.append(f"*Trigger:* {_escape(data['trigger_event'])}")
    signals = data.get("top_signals") or []
    if signals:
        top = ", ".join(
            f"{_escape(s.get('signal', ''))} ({_number(s.get('points'))})"
            for s in signals[:TOP_SIGNALS]
        )
        lines.append(f"*Top signals:* {top}")
    return "\n".join(lines)


def _facts(data: dict[str, Any], lead: dict[str, Any]) -> list[tuple[str, str]]:
    territory = lead.get("territory") or {}
    traits = lead.get("traits") or {}
    facts = [
        ("Score", f"{_number(data.get('score'))} (fit {_number(data.get('fit'))}, "
                  f"engagement {_number(data.get('engagement'))})"),
        ("SLA due", _when(data["sla_due_at"]) if data.get("sla_due_at") else "no deadline"),
        ("Email", lead.get("email") or "unknown"),
        ("Pool", data.get("pool") or "none"),
    ]  # fmt: skip
    if traits.get("title"):
        facts.append(("Title", str(traits["title"])))
    for name in ("country", "segment", "industry"):
        if territory.get(name):
            facts.append((name.capitalize(), str(territory[name])))
    if data.get("express"):
        facts.append(("Express", "yes: act first"))
    return facts


def _when(iso: str) -> str:
    """A time every reader sees in their own zone (Slack's date formatting), with the
    ISO instant as the fallback."""
    at = datetime.fromisoformat(iso)
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at.isoformat()}>"


def _number(value: Any) -> str:
    return f"{value:.0f}" if isinstance(value, int | float) else "?"


def _escape(text: Any) -> str:
    """Slack's three control characters in mrkdwn, escaped as it documents."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
