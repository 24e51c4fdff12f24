"""Every event ingest can emit counts under the shipped rules, or is listed as worth nothing.

Events are built by ingest's own normalisation (email generic schema, SendGrid's webhook,
Segment calls), not written by hand, so renaming an event in ingest without the rules
fails here. Track calls from a website carry any name; for them the express lanes are
checked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest

from baton_ingest.email import SENDGRID_TYPES, EmailEvent, EmailEventType, from_generic
from baton_ingest.email import from_sendgrid as sendgrid_event
from baton_ingest.normalize import normalize
from baton_ingest.pages import DEFAULT_PAGE_RULES
from baton_ingest.segment import parse_message
from baton_scorer.points import engagement_points, express_lane, matching_rules
from baton_scorer.rules import Rules, RulesError, load_rules, parse_rules
from baton_shared.email_events import BY_EMAIL_TYPE, EmailEngagement
from baton_shared.schemas import EventType, LeadEvent

AT = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
FUTURE = timedelta(minutes=5)
RULES = load_rules()
SEGMENT_TYPES = ("identify", "page", "screen", "group", "alias")


def from_email(kind: str) -> LeadEvent:
    event = EmailEvent(id=f"e-{kind}", email="ada@acme.example", type=kind, timestamp=AT)  # type: ignore[arg-type]
    return from_generic(event, received_at=AT, max_future=FUTURE)


def from_sendgrid(kind: str) -> LeadEvent:
    raw = {
        "email": "ada@acme.example",
        "event": kind,
        "sg_event_id": f"sg-{kind}",
        "timestamp": int(AT.timestamp()),
        **({"url": "https://acme.example/pricing"} if kind == "click" else {}),
    }
    return sendgrid_event(raw, received_at=AT, max_future=FUTURE)


def from_segment(call: dict[str, Any]) -> LeadEvent:
    raw = {"userId": "u-1", "messageId": "m-1", "timestamp": AT.isoformat(), **call}
    record = normalize(parse_message(raw), received_at=AT, source="segment", max_future=FUTURE)
    return LeadEvent.model_validate(record)


def segment_calls() -> list[dict[str, Any]]:
    """One call of each type, a page view in each default category, the express lanes."""
    extra = {"group": {"groupId": "g-1"}, "alias": {"previousId": "anon-1"}}
    calls = [{"type": t, **extra.get(t, {})} for t in SEGMENT_TYPES]
    calls += [{"type": "page", "properties": {"path": r.prefix}} for r in DEFAULT_PAGE_RULES]
    calls += [{"type": "track", "event": n} for n in RULES.express_lanes if isinstance(n, str)]
    return calls


EMITTED = (
    [pytest.param(from_email(k), id=f"email:{k}") for k in get_args(EmailEventType)]
    + [pytest.param(from_sendgrid(k), id=f"sendgrid:{k}") for k in SENDGRID_TYPES]
    + [pytest.param(from_segment(c), id=f"segment:{c}") for c in segment_calls()]
)


def scored(event: LeadEvent, rules: Rules = RULES) -> bool:
    return bool(matching_rules(event, rules)) or express_lane(event, rules) is not None


def listed(event: LeadEvent, rules: Rules = RULES) -> bool:
    return rules.lists_worth_nothing(event.type, event.name, event.page_category)


@pytest.mark.parametrize("event", EMITTED)
def test_the_default_rules_score_or_list_every_event_ingest_emits(event: LeadEvent) -> None:
    assert scored(event) or listed(event), (
        f"{event.source} emits {event.type} {event.name or event.page_category!r}: "
        "the default rules neither score it nor list it under worth_nothing"
    )
    assert not (scored(event) and event.name and listed(event)), "scored and listed"


def test_ingest_names_email_events_from_the_shared_vocabulary() -> None:
    assert set(get_args(EmailEventType)) == set(BY_EMAIL_TYPE)
    assert set(SENDGRID_TYPES.values()) <= set(BY_EMAIL_TYPE)
    emitted = {from_email(k).name for k in BY_EMAIL_TYPE}
    emitted |= {from_sendgrid(k).name for k in SENDGRID_TYPES}
    assert emitted == {e.value for e in EmailEngagement}
    assert all(from_sendgrid(k).type == EventType.TRACK for k in SENDGRID_TYPES)


@pytest.mark.parametrize(
    ("name", "sign"),
    [
        (EmailEngagement.OPENED, 1),
        (EmailEngagement.CLICKED, 1),
        (EmailEngagement.REPLIED, 1),
        (EmailEngagement.RESUBSCRIBED, 1),
        (EmailEngagement.UNSUBSCRIBED, -1),
        (EmailEngagement.MARKED_AS_SPAM, -1),
        (EmailEngagement.BOUNCED, -1),
        (EmailEngagement.PROCESSED, 0),
        (EmailEngagement.DELIVERED, 0),
        (EmailEngagement.DEFERRED, 0),
        (EmailEngagement.DROPPED, 0),
    ],
)
def test_email_engagement_counts_up_and_down(name: EmailEngagement, sign: int) -> None:
    kind = next(k for k, v in BY_EMAIL_TYPE.items() if v == name)
    points = engagement_points(from_email(kind), RULES)
    assert (points > 0) - (points < 0) == sign
    assert listed(from_email(kind)) == (sign == 0)


def test_email_opens_are_capped_per_day() -> None:
    (open_rule,) = matching_rules(from_email("open"), RULES)
    assert open_rule.cap_points is not None and open_rule.window_s == 24 * 3600


def test_every_default_page_category_is_scored_not_just_listed() -> None:
    for rule in DEFAULT_PAGE_RULES:
        page = from_segment({"type": "page", "properties": {"path": rule.prefix}})
        assert matching_rules(page, RULES), rule.category


RULES_WITH_LIST = """
name: listed
engagement:
  events: {Email Clicked: 8}
worth_nothing:
  - Email Delivered
  - {type: identify}
"""


def test_worth_nothing_is_a_record_not_a_scoring_input() -> None:
    with_list = parse_rules(RULES_WITH_LIST)
    without = parse_rules(RULES_WITH_LIST.split("worth_nothing:")[0])
    assert list(with_list.compiled.rules) == list(without.compiled.rules)
    assert listed(from_email("delivered"), with_list)
    assert listed(from_segment({"type": "identify"}), with_list)
    assert not listed(from_email("click"), with_list)


def test_a_listed_name_the_rules_score_is_refused() -> None:
    with pytest.raises(RulesError, match="worth_nothing lists 'Email Clicked'"):
        parse_rules(RULES_WITH_LIST.replace("Email Delivered", "Email Clicked"))
