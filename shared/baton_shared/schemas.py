"""The wire contracts: one pydantic model per record type, JSON on every topic.

Every record carries ``schema`` (an integer version). A consumer accepts the
versions it knows and sends others to its DLQ. ``python -m baton_shared.schemas``
prints the JSON Schema of every record for consumers in other languages.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class Record(BaseModel):
    """Base of every record on a Baton topic: frozen, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")

    def to_bytes(self) -> bytes:
        # pydantic-core serialises in Rust, without building a dict first.
        return self.model_dump_json(by_alias=True).encode()


R = TypeVar("R", bound=Record)


def decode(model: type[R], raw: bytes) -> R:
    """Parse one record; raises pydantic.ValidationError on anything malformed."""
    return model.model_validate_json(raw)


M = TypeVar("M", bound=BaseModel)


def trusted_constructor(model: type[M]) -> Callable[..., M]:
    """A constructor for ``model`` that skips validation, for hot paths whose code builds
    every value with its exact type (never for anything read from outside).

    What ``model_construct`` does, with the defaults looked up once instead of per call.
    Fields not given take their defaults; every required field must be given.
    ``tests/shared/test_schemas.py`` checks it builds exactly what ``model_construct``
    builds, serialised bytes included.
    """
    fields = model.model_fields
    if model.__pydantic_post_init__ or model.__private_attributes__:
        raise TypeError(f"{model.__name__} needs model_construct (post-init or private attrs)")
    # In field order: pydantic serialises ``__dict__`` in its order.
    template = {
        n: _MISSING if f.is_required() or f.default_factory else f.default
        for n, f in fields.items()
    }
    factories = [(n, f.default_factory) for n, f in fields.items() if f.default_factory]
    size = len(template)
    new = model.__new__
    set_ = object.__setattr__

    def build(**values: Any) -> M:
        data = template.copy()
        data.update(values)
        for name, factory in factories:
            if data[name] is _MISSING:
                data[name] = factory()  # type: ignore[call-arg]
        if len(data) != size or _MISSING in data.values():
            given = values.keys()
            raise TypeError(
                f"{model.__name__}: unknown {sorted(given - fields.keys())}, "
                f"missing {sorted(n for n, v in data.items() if v is _MISSING)}"
            )
        obj = new(model)
        set_(obj, "__dict__", data)
        set_(obj, "__pydantic_fields_set__", set(values))
        set_(obj, "__pydantic_extra__", None)
        set_(obj, "__pydantic_private__", None)
        return obj

    return build


_MISSING = object()


class EventType(StrEnum):
    TRACK = "track"
    IDENTIFY = "identify"
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"


class PageInfo(BaseModel):
    """The page an event happened on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str | None = None
    path: str | None = None
    referrer: str | None = None
    title: str | None = None


class LeadEvent(Record):
    """A behavioural event or identity/trait update, normalised from any source.

    ``lead_id`` is the partition key: the userId when known, else the email,
    else the anonymousId.
    """

    event_id: str = Field(description="Source message id (Segment messageId); the dedup key")
    lead_id: str
    user_id: str | None = None
    anonymous_id: str | None = None
    email: str | None = None
    type: EventType
    name: str | None = Field(default=None, description="Track event name, or page name")
    occurred_at: AwareDatetime = Field(description="Event time, clock-skew corrected")
    received_at: AwareDatetime
    source: str = Field(description="Where it came from: segment, rudderstack, sendgrid, email")
    page_category: str | None = Field(
        default=None, description="From ingest's URL rules: pricing, demo, careers, docs, ..."
    )
    page: PageInfo | None = None
    campaign: dict[str, str] = Field(
        default_factory=dict, description="UTM fields: source, medium, name, term, content"
    )
    user_agent: str | None = None
    ip: str | None = None
    group_id: str | None = Field(default=None, description="Account id of a group call")
    previous_id: str | None = Field(default=None, description="The old id of an alias call")
    possible_duplicate: bool = Field(
        default=False,
        description="Ingest saw this event_id recently; the scorer's dedup drops it",
    )
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    sealed: str | None = Field(
        default=None,
        description="Privacy mode: the personal fields, encrypted with the lead's data key "
        "(baton_shared.privacy); on the wire those fields are empty and ids are pseudonyms",
    )
    email_id: str | None = Field(
        default=None, description="Privacy mode: the pseudonym of the email, for merging"
    )


class Stage(StrEnum):
    NEW = "new"
    MQL = "mql"
    SQL = "sql"
    RECYCLED = "recycled"
    DISQUALIFIED = "disqualified"
    CUSTOMER = "customer"


class ReasonKind(StrEnum):
    THRESHOLD = "threshold"
    EXPRESS_LANE = "express_lane"
    QUALIFICATION = "qualification"
    RECYCLE = "recycle"
    REJECTION = "rejection"
    DISQUALIFIED = "disqualified"
    WON = "won"
    LOST = "lost"
    REROUTE = "reroute"


class Signal(BaseModel):
    """One engagement signal (a rules label) and its decayed points at the transition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signal: str
    points: float


class Transition(Record):
    """A lead's stage change, with the score and the reason that caused it.

    ``transition_id`` is deterministic (lead, stage, triggering event): every
    consumer dedups on it, so a re-emitted transition is harmless.
    """

    transition_id: str
    lead_id: str
    from_stage: Stage
    to_stage: Stage
    score: float
    fit: float
    engagement: float
    reason: str
    express: bool = False
    trigger_event_id: str
    trigger_event: str | None = None
    occurred_at: AwareDatetime
    rules_version: str
    reason_kind: ReasonKind | None = Field(default=None, description="Why, as a machine value")
    top_signals: list[Signal] = Field(
        default_factory=list, description="The signals contributing most to the engagement"
    )
    emitted_at: AwareDatetime | None = Field(
        default=None,
        description="When the scorer emitted it (wall clock); occurred_at is event time",
    )
    email: str | None = Field(default=None, description="The lead's email, when known")
    traits: dict[str, Any] = Field(
        default_factory=dict,
        description="The lead's traits as the scorer knows them (title, company, country, "
        "industry, ...): what routing rules and the rep's webhook use",
    )
    sealed: str | None = Field(
        default=None,
        description="Privacy mode: email and traits, encrypted with the lead's data key",
    )


class Assignment(Record):
    """A lead handed to a rep."""

    assignment_id: str
    transition_id: str
    lead_id: str
    rep_id: str
    strategy: str
    express: bool = False
    qualified_at: AwareDatetime = Field(description="When the lead qualified (transition time)")
    assigned_at: AwareDatetime
    pool: str | None = Field(default=None, description="The pool (team) that took the lead")
    reason: str | None = Field(default=None, description="Why this rep: rule, ownership, ...")
    sla_due_at: AwareDatetime | None = Field(
        default=None, description="First-touch deadline the router told the rep"
    )
    reassignments: int = Field(default=0, description="How often this lead was taken back")
    previous_rep_id: str | None = Field(
        default=None, description="On a re-assignment: the rep the lead was taken from"
    )
    stage: Stage = Field(
        default=Stage.SQL,
        description="The lead's stage: sql (a rep works the lead) or mql (an SDR task)",
    )


class ActivityKind(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    WON = "won"
    LOST = "lost"


class Activity(Record):
    """Something a rep did with a lead."""

    activity_id: str
    lead_id: str
    rep_id: str | None = None
    kind: ActivityKind
    reason: str | None = None
    disposition: str | None = Field(
        default=None,
        description="On ``rejected``/``lost``: why, as a code (baton_shared.dispositions); "
        "``reason`` stays a free-text note beside it",
    )
    occurred_at: AwareDatetime
    assignment_id: str | None = Field(
        default=None, description="The assignment the rep acted on, when known"
    )
    bant: list[str] = Field(
        default_factory=list,
        description="On ``qualified``: the qualification fields the rep confirmed "
        "(budget, authority, need, timeline; the scorer's rules name the ones its gate needs)",
    )
    framework: str | None = Field(
        default=None,
        description="On ``qualified``: the framework ``fields`` belong to "
        "(baton_shared.qualification; none: bant)",
    )
    fields: list[str] = Field(
        default_factory=list,
        description="On ``qualified``: confirmed fields of ``framework``; the scorer credits "
        "them and ``bant`` alike, by name",
    )


class SlaStatus(StrEnum):
    STARTED = "started"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"
    CANCELLED = "cancelled"  # the lead was recycled or disqualified: nothing more is due


class SlaMeasure(StrEnum):
    """Which delay an SLA clock measures."""

    FIRST_TOUCH = "first_touch"  # rep delay: assignment (or MQL transition) → first touch
    ASSIGN = "assign"  # system delay: qualifying transition → assignment
    ATTEMPTS = "attempts"  # rep effort: assignment → the policy's minimum contact attempts


class SlaEvent(Record):
    """A speed-to-lead clock changed state. ``event_id`` is deterministic per clock and status.

    ``measure`` says which delay the clock measures. ``first_touch`` (the default, and
    every event before the field existed) is a rep's clock. ``assign`` is the pipeline's:
    opened at the qualifying transition, stopped by the assignment (``transition_id``
    names it); its events have no ``rep_id`` or ``assignment_id`` and are never a rep's
    breach: a consumer that escalates a rep's breach filters on
    ``measure == "first_touch"`` and a non-null ``assignment_id``. ``attempts`` is a
    rep's clock too: opened by an assignment, met once ``attempts_made`` reaches
    ``attempts_required`` ``contacted`` activities, breached at its deadline short of it.
    """

    event_id: str
    clock_id: str
    lead_id: str
    rep_id: str | None = Field(
        default=None,
        description="The rep on the clock; None on an MQL clock without an SDR task and on "
        "an assign clock until its assignment",
    )
    assignment_id: str | None = Field(
        default=None,
        description="The assignment that opened the first_touch clock; None on an assign "
        "clock and on an MQL clock opened by its transition (no SDR task yet)",
    )
    status: SlaStatus
    measure: SlaMeasure = Field(
        default=SlaMeasure.FIRST_TOUCH,
        description="first_touch (rep delay) or assign (qualifying transition to assignment)",
    )
    transition_id: str | None = Field(
        default=None, description="The qualifying transition the clock belongs to, when known"
    )
    started_at: AwareDatetime
    deadline_at: AwareDatetime
    at: AwareDatetime
    elapsed_seconds: float | None = Field(
        default=None,
        description="met/breached on a touch: assignment to first touch, wall-clock "
        "(measure assign: qualifying transition to assignment)",
    )
    team: str | None = Field(default=None, description="The assignment's pool (team)")
    stage: str = Field(default="sql", description="The lead's stage when assigned")
    express: bool = False
    policy_version: str | None = Field(
        default=None, description="The SLA policy (name@hash) that set the deadline"
    )
    window_seconds: float | None = Field(
        default=None,
        description="The first-touch window, in counted (business) seconds "
        "(measure assign: the time-to-assign target, wall-clock)",
    )
    warning_fraction: float | None = Field(
        default=None, description="at_risk: the fraction of the window that has run"
    )
    counted_seconds: float | None = Field(
        default=None, description="met/breached on a touch: seconds the clock ran (business hours)"
    )
    system_delay_seconds: float | None = Field(
        default=None, description="Qualifying action to assignment (the pipeline's share)"
    )
    assign_target_seconds: float | None = Field(
        default=None, description="The policy's time-to-assign target"
    )
    attempts_required: int | None = Field(
        default=None, description="measure attempts: the contact attempts the policy asks for"
    )
    attempts_made: int | None = Field(
        default=None,
        description="measure attempts: contacted activities counted so far (by the deadline)",
    )


class LeadMerged(Record):
    """Two leads became one: ``merged_id`` is gone, its history is in ``survivor_id``.

    Published by the scorer for every merge it applies, keyed by the survivor. From then
    on the merged-away id means the survivor everywhere (the router's assignments and
    lookups, the SLA monitor's clocks). ``merge_id`` is deterministic (both ids), so a
    re-emitted record is harmless.
    """

    merge_id: str
    merged_id: str = Field(description="The lead merged away (an id it is no longer known by)")
    survivor_id: str = Field(description="The lead that holds both histories")
    occurred_at: AwareDatetime = Field(description="Event time of the merge (the later watermark)")
    emitted_at: AwareDatetime | None = Field(
        default=None, description="When the scorer emitted it (wall clock)"
    )


class AccountStage(StrEnum):
    COLD = "cold"
    ENGAGED = "engaged"
    SALES_READY = "sales_ready"


class AccountLead(BaseModel):
    """One lead of an account and its engagement points at the account's transition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lead_id: str
    points: float


class AccountTransition(Record):
    """An account's stage change on ``accounts.transitions``, keyed by account id.

    An account's score is its fit plus the sum of its leads' decayed engagement;
    ``transition_id`` is deterministic (account, stage, the lead update that moved it),
    so a re-emitted transition is harmless.
    """

    transition_id: str
    account_id: str = Field(description="The company's domain, else its group id")
    from_stage: AccountStage
    to_stage: AccountStage
    score: float
    fit: float = Field(description="Points for the company, from the account's traits")
    engagement: float = Field(description="The sum of its leads' engagement, decayed")
    leads: list[AccountLead] = Field(
        default_factory=list, description="The leads contributing, most points first"
    )
    trigger_lead_id: str = Field(description="The lead whose change moved the account")
    occurred_at: AwareDatetime = Field(description="Event time: the account's latest event")
    rules_version: str
    emitted_at: AwareDatetime | None = Field(
        default=None, description="When the scorer emitted it (wall clock)"
    )


class LeadErasure(Record):
    """A person's erasure on ``leads.erasures``, keyed by each pseudonymous lead id.

    ``requested``: the router destroyed the keys of ``subjects`` and asks the scorer to
    resolve every subject linked to them. ``resolved``: the scorer did, and names in
    ``lead_ids`` every lead whose rows the router and SLA monitor must delete. Only
    pseudonyms travel here, never the erased data.
    """

    erasure_id: str
    stage: Literal["requested", "resolved"]
    subjects: list[str] = Field(description="Pseudonyms of the identities given")
    lead_ids: list[str] = Field(
        default_factory=list, description="resolved: every pseudonymous lead id erased"
    )
    requested_at: AwareDatetime


class DeadLetter(Record):
    """A record a consumer could not process, with the reason, on ``<topic>.dlq``."""

    source_topic: str
    partition: int
    offset: int
    key: str | None
    value: str = Field(description="The original value, decoded as UTF-8 with replacement")
    error: str
    consumer: str
    failed_at: datetime


RECORDS: dict[str, type[Record]] = {
    "LeadEvent": LeadEvent,
    "Transition": Transition,
    "Assignment": Assignment,
    "Activity": Activity,
    "SlaEvent": SlaEvent,
    "LeadMerged": LeadMerged,
    "AccountTransition": AccountTransition,
    "LeadErasure": LeadErasure,
    "DeadLetter": DeadLetter,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema for every record, as consumers in other languages need it."""
    return {name: model.model_json_schema(by_alias=True) for name, model in RECORDS.items()}


if __name__ == "__main__":
    sys.stdout.buffer.write(orjson.dumps(json_schemas(), option=orjson.OPT_INDENT_2))
