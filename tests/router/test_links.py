"""One-click link tokens (pure): bound to assignment, rep and action; a changed byte, a
wrong secret, a cut token or the passing of the expiry is refused, each as its own case;
and the Slack message built from an assignment stays within Block Kit's limits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from baton_router.links import (
    ExpiredLink,
    LinkAction,
    LinkSigner,
    MalformedLink,
    TamperedLink,
)
from baton_router.slack import assignment_message
from tests.support.slack import block_kit_problems

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
SIGNER = LinkSigner("a-test-link-secret-0123", timedelta(days=7), "https://router.test")


def test_a_link_says_which_assignment_rep_and_action_until_when() -> None:
    assignment, rep = uuid.uuid4(), uuid.uuid4()
    token = SIGNER.sign(assignment, rep, LinkAction.REJECT, NOW)
    claim = SIGNER.verify(token, NOW + timedelta(days=6))
    assert (claim.assignment_id, claim.rep_id, claim.action) == (assignment, rep, "reject")
    assert claim.expires_at == NOW + timedelta(days=7)
    other = SIGNER.verify(SIGNER.sign(assignment, rep, LinkAction.ACCEPT, NOW), NOW)
    assert other.token_id != claim.token_id  # each action's link is used up on its own


def test_changed_cut_foreign_secret_and_expired_links_are_refused() -> None:
    token = SIGNER.sign(uuid.uuid4(), uuid.uuid4(), LinkAction.ACCEPT, NOW)
    payload, signature = token.split(".")
    flipped = payload[:-3] + ("A" if payload[-3] != "A" else "B") + payload[-2:]
    with pytest.raises(TamperedLink):
        SIGNER.verify(f"{flipped}.{signature}", NOW)
    with pytest.raises(TamperedLink):
        LinkSigner("another-secret-0123456", timedelta(days=7), "").verify(token, NOW)
    for cut in (payload, token[:-1] + "!", "", "a.b.c", "é." + signature):
        with pytest.raises((MalformedLink, TamperedLink)):
            SIGNER.verify(cut, NOW)
    with pytest.raises(ExpiredLink):
        SIGNER.verify(token, NOW + timedelta(days=7))


def test_assignment_links_carry_every_action_and_their_expiry() -> None:
    links = SIGNER.links(uuid.uuid4(), uuid.uuid4(), NOW)
    assert set(links) == {"accept", "reject", "contacted", "expires_at"}
    assert links["accept"].startswith("https://router.test/links/")
    assert links["expires_at"] == (NOW + timedelta(days=7)).isoformat()


def test_slack_message_of_a_lead_with_huge_traits_stays_within_block_kit_limits() -> None:
    huge = "x<&>" * 2000
    payload = {
        "type": "lead.assigned",
        "data": {
            "assignment_id": str(uuid.uuid4()),
            "lead": {
                "lead_id": "lead-1",
                "email": f"{huge}@example.com",
                "domain": "example.com",
                "traits": {"name": huge, "company": huge, "title": huge},
                "territory": {"country": "de", "segment": huge, "industry": huge},
            },
            "score": 120.4,
            "fit": 40,
            "engagement": 80,
            "reason": huge,
            "trigger_event": huge,
            "top_signals": [{"signal": huge, "points": 10.0}] * 20,
            "sla_due_at": NOW.isoformat(),
            "pool": huge,
            "express": True,
            "links": SIGNER.links(uuid.uuid4(), uuid.uuid4(), NOW),
        },
    }
    message = assignment_message(payload)
    assert block_kit_problems(message) == []
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    assert [e["url"] for e in actions["elements"]] == [
        payload["data"]["links"][a] for a in ("accept", "contacted", "reject")
    ]
    assert "x&lt;&amp;&gt;" in message["blocks"][1]["text"]["text"]  # mrkdwn escaped
