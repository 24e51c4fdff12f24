"""Slack messages as Block Kit, built with Slack's ``slack_sdk`` models.

:func:`assignment_message` turns the webhook body of a ``lead.assigned`` /
``lead.sdr_task`` (``payloads.assignment_payload``) into an incoming-webhook message: who
the lead is, why it is hot, the SLA due time, and the one-click links as buttons.
:func:`notice_message` does the same for what follows (``notices.py``): a lead recycled
or disqualified, an at-risk nudge to the rep (with its one-click links), a breach to the
pool's manager. Every text is cut to Slack's documented limits, so a lead with long
traits still posts. Pure: plain data in, the JSON body out; the outbox delivers it
(``dispatcher.py``).
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
    blocks += _actions_and_notes(data)
    fallback = f"{title}: {who} (score {_number(data.get('score'))})"
    return _message(fallback, blocks)


#: A notice's title, per webhook type (``notices.py``).
NOTICE_TITLES = {
    "lead.recycled": "Lead recycled to nurture, no longer yours",
    "lead.disqualified": "Lead disqualified, no longer yours",
    "lead.sla_at_risk": "First touch due soon",
    "lead.sla_breached": "SLA breached in your pool",
}

#: What a breach did, as a manager reads it (``Escalated.status``).
BREACH_OUTCOMES = {
    "reassigned": "re-assigned to another rep of the pool",
    "manager_notified": "left with the rep: it is yours to act on",
    "capped": "not re-assigned again (the pool's cap): it is yours to act on",
    "kept": "kept by the rep (nobody else was available)",
}


def notice_message(payload: dict[str, Any]) -> dict[str, Any]:
    """The incoming-webhook body for a ``notices.py`` payload: a recycled or
    disqualified lead (to its rep), an at-risk nudge (to the rep, with the one-click
    links), or a breach (to the pool's manager)."""
    data = payload["data"]
    who = _who(data.get("lead") or {})
    title = NOTICE_TITLES[payload["type"]]
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_cut(f"{title}: {who}", HEADER_MAX))),
        SectionBlock(text=MarkdownTextObject(text=_cut(_notice_text(payload), SECTION_TEXT_MAX))),
    ]
    blocks += _actions_and_notes(data)
    return _message(f"{title}: {who}", blocks)


def _notice_text(payload: dict[str, Any]) -> str:
    data = payload["data"]
    if payload["type"] in ("lead.recycled", "lead.disqualified"):
        lines = [f"*Why:* {_escape(data.get('reason') or data.get('to_stage'))}"]
        if data.get("track"):
            lines.append(f"*Nurture track:* {_escape(data['track'])}")
        lines.append("Stop working it; it no longer counts against your capacity.")
        return "\n".join(lines)
    due = f"*First touch due:* {_when(data['deadline_at'])}"
    if payload["type"] == "lead.sla_at_risk":
        used = data.get("warning_fraction")
        share = f" ({used:.0%} of the window gone)" if isinstance(used, int | float) else ""
        return f"{due}{share}\nTouch the lead now, or it breaches."
    outcome = BREACH_OUTCOMES.get(data.get("outcome") or "", "escalated")
    return (
        f"*Rep:* {_escape(data.get('rep_name') or data.get('rep_id'))}"
        f" · *Pool:* {_escape(data.get('pool') or 'none')}\n{due}, missed\n*The lead:* {outcome}"
    )


def _actions_and_notes(data: dict[str, Any]) -> list[Block]:
    """The one-click buttons (when the payload has links) and the assignment note."""
    blocks: list[Block] = []
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
    return blocks


def _message(fallback: str, blocks: list[Block]) -> dict[str, Any]:
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
