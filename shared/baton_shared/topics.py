"""Every Kafka topic Baton reads or writes, named once.

Lead topics are keyed by lead id so that one lead's history stays ordered in one
partition; ``accounts.transitions`` is keyed by account id. A deployment may prefix
every name (``BATON_TOPIC_PREFIX``) to run several isolated Batons, or isolated tests,
on one cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

LEADS_EVENTS = "leads.events"
# Express-lane events (a demo request, ...): leads.events' records, on a topic of their own
# that the scorer reads ahead of the bulk. Keyed by lead id, partitioned like leads.events.
LEADS_EXPRESS = "leads.express"
LEADS_TRANSITIONS = "leads.transitions"
LEADS_ASSIGNMENTS = "leads.assignments"
LEADS_ACTIVITY = "leads.activity"
LEADS_SLA = "leads.sla"
LEADS_MERGES = "leads.merges"  # keyed by the survivor's id
LEADS_ERASURES = "leads.erasures"  # keyed by pseudonymous lead id
ACCOUNTS_TRANSITIONS = "accounts.transitions"  # keyed by account id

# Configuration, not lead data: compacted, one partition, keyed by document kind.
# Not in ALL: it must be created compacted (``baton-scorer rules publish`` and the
# scorer create it so), never by a generic ensure_topics of the lead topics.
SCORER_RULES = "scorer.rules"

ALL = (
    LEADS_EVENTS,
    LEADS_EXPRESS,
    LEADS_TRANSITIONS,
    LEADS_ASSIGNMENTS,
    LEADS_ACTIVITY,
    LEADS_SLA,
    LEADS_MERGES,
    ACCOUNTS_TRANSITIONS,
    LEADS_ERASURES,
)
DEFAULT_PARTITIONS = 3


def dlq(topic: str) -> str:
    """The dead-letter topic for records of ``topic`` that could not be processed."""
    return f"{topic}.dlq"


@dataclass(frozen=True)
class Topics:
    """Resolved topic names for one deployment (base names plus the prefix)."""

    prefix: str = ""

    @property
    def events(self) -> str:
        return self.prefix + LEADS_EVENTS

    @property
    def express(self) -> str:
        """Express-lane events (``LeadEvent``, as on ``leads.events``), read ahead of bulk."""
        return self.prefix + LEADS_EXPRESS

    @property
    def transitions(self) -> str:
        return self.prefix + LEADS_TRANSITIONS

    @property
    def assignments(self) -> str:
        return self.prefix + LEADS_ASSIGNMENTS

    @property
    def activity(self) -> str:
        return self.prefix + LEADS_ACTIVITY

    @property
    def sla(self) -> str:
        return self.prefix + LEADS_SLA

    @property
    def merges(self) -> str:
        """Leads merged into others (``LeadMerged``), keyed by the survivor."""
        return self.prefix + LEADS_MERGES

    @property
    def erasures(self) -> str:
        """Erasure requests and their resolution (``LeadErasure``), keyed by pseudonym."""
        return self.prefix + LEADS_ERASURES

    @property
    def accounts_transitions(self) -> str:
        """Accounts becoming engaged or sales-ready (keyed by account id)."""
        return self.prefix + ACCOUNTS_TRANSITIONS

    @property
    def scorer_rules(self) -> str:
        """The scorer's rules documents (compacted): every worker follows the latest."""
        return self.prefix + SCORER_RULES

    def all(self) -> list[str]:
        """Every lead topic, including each one's DLQ (not the compacted config topic)."""
        names = [self.prefix + name for name in ALL]
        return names + [dlq(name) for name in names]

    def group(self, name: str) -> str:
        """A consumer group id in this deployment's namespace."""
        return self.prefix + name
