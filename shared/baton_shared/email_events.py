"""The vocabulary of email engagement: the track event names every email event becomes.

Ingest names each email event (Baton's generic schema, SendGrid's webhook) with one of
these; the scoring rules score them by the same names (``default_rules.yaml``, where
the ones worth no points are listed under ``worth_nothing``). Names follow Segment's
Email spec where it has one (``Email Opened``, ``Email Marked as Spam``, ...).
"""

from __future__ import annotations

from enum import StrEnum


class EmailEngagement(StrEnum):
    """A track event name for an email event."""

    PROCESSED = "Email Processed"
    DELIVERED = "Email Delivered"
    DEFERRED = "Email Deferred"
    BOUNCED = "Email Bounced"
    DROPPED = "Email Dropped"
    OPENED = "Email Opened"
    CLICKED = "Email Clicked"
    REPLIED = "Email Replied"
    MARKED_AS_SPAM = "Email Marked as Spam"
    UNSUBSCRIBED = "Unsubscribed"
    RESUBSCRIBED = "Resubscribed"


# The ``type`` of Baton's generic email schema → the event name it becomes.
BY_EMAIL_TYPE: dict[str, EmailEngagement] = {
    "processed": EmailEngagement.PROCESSED,
    "delivered": EmailEngagement.DELIVERED,
    "deferred": EmailEngagement.DEFERRED,
    "bounce": EmailEngagement.BOUNCED,
    "dropped": EmailEngagement.DROPPED,
    "open": EmailEngagement.OPENED,
    "click": EmailEngagement.CLICKED,
    "reply": EmailEngagement.REPLIED,
    "spam_report": EmailEngagement.MARKED_AS_SPAM,
    "unsubscribe": EmailEngagement.UNSUBSCRIBED,
    "resubscribe": EmailEngagement.RESUBSCRIBED,
}
