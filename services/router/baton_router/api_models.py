"""The router API's request and response bodies. Validation lives here, so a bad request
is a 422 whose ``loc`` names the field and whose ``msg`` says what to fix."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from baton_router.availability import InvalidCalendar, parse_timezone, parse_working_hours
from baton_router.routing import (
    OPERATORS,
    InvalidCondition,
    check_condition,
    normalise_domain,
)
from baton_router.strategies import Strategy
from baton_router.territory import country_code, is_known_country, language_code
from baton_shared.schemas import ActivityKind

BANT_FIELDS = ("budget", "authority", "need", "timeline")
RepStatus = Literal["online", "away", "offline"]
SkillName = Literal["regions", "countries", "industries", "segments", "languages"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutOfOffice(Strict):
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> OutOfOffice:
        if self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        return self


def _check_timezone(value: str | None) -> str | None:
    if value is not None:
        try:
            parse_timezone(value)
        except InvalidCalendar as exc:
            raise ValueError(exc.message) from None
    return value


def _check_hours(value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
    try:
        parse_working_hours(value)
    except InvalidCalendar as exc:
        raise ValueError(f"{exc.field}: {exc.message}") from None
    return value


class RepProfile(Strict):
    """Fields a rep has beyond identity; every one optional on update."""

    timezone: str | None = Field(default=None, description="IANA name, e.g. Europe/Berlin")
    working_hours: dict[str, list[str]] | None = Field(
        default=None,
        description="Weekly template in the rep's time zone: "
        '{"mon": ["09:00-17:00"], ...}; a missing day is off; absent: always on',
        examples=[{"mon": ["09:00-12:00", "13:00-17:00"], "tue": ["09:00-17:00"]}],
    )
    status: RepStatus | None = None
    out_of_office: list[OutOfOffice] | None = None
    capacity: int | None = Field(default=None, ge=0, le=10_000, description="Max open leads")
    weight: int | None = Field(default=None, ge=1, le=1000, description="Weighted round robin")
    skills: dict[SkillName, list[str]] | None = Field(
        default=None,
        description="What the rep covers; a lead outside a non-empty list goes to someone "
        "else. regions (na, latam, emea, apac, or your own names), countries (ISO codes or "
        "names), industries, segments (smb, mid_market, enterprise, ...), languages "
        "(ISO 639-1). Stored canonical: lower case, countries and languages as codes",
        examples=[{"regions": ["emea"], "languages": ["de", "en"]}],
    )

    @field_validator("skills")
    @classmethod
    def _skills(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        return None if value is None else canonical_skills(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return _check_timezone(value)

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        return _check_hours(value)


def canonical_skills(skills: dict[str, list[str]]) -> dict[str, list[str]]:
    """Skills as routing compares them; a value that could never match is an error."""
    out: dict[str, list[str]] = {}
    for skill, values in skills.items():
        clean: list[str] = []
        for i, raw in enumerate(values):
            text = raw.strip().lower()
            if not text or len(text) > 100:
                raise ValueError(f"{skill}[{i}]: give 1 to 100 characters")
            if skill == "countries":
                if not is_known_country(text):
                    raise ValueError(
                        f"countries[{i}]: {raw!r} is neither an ISO 3166 two-letter code nor "
                        "a country name Baton knows; use the code (e.g. 'de')"
                    )
                text = country_code(text) or text
            elif skill == "languages":
                code = language_code(text) or ""
                if len(code) != 2 or not code.isalpha():
                    raise ValueError(
                        f"languages[{i}]: {raw!r} is not an ISO 639-1 code (e.g. 'de')"
                    )
                text = code
            clean.append(text)
        out[skill] = list(dict.fromkeys(clean))
    return out


class RepIn(RepProfile):
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    webhook_url: AnyHttpUrl


class RepPatch(RepProfile):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None
    webhook_url: AnyHttpUrl | None = None


class Availability(Strict):
    status: RepStatus | None = None
    out_of_office: list[OutOfOffice] | None = None


class RepOut(BaseModel):
    id: uuid.UUID
    name: str
    email: str
    webhook_url: str
    status: str
    created_at: datetime
    timezone: str = "UTC"
    working_hours: dict[str, list[str]] | None = None
    out_of_office: list[dict[str, str]] = Field(default_factory=list)
    capacity: int | None = None
    weight: int = 1
    skills: dict[str, list[str]] = Field(default_factory=dict)
    webhook_disabled_at: datetime | None = None
    open_leads: int | None = None


class RepCreated(RepOut):
    webhook_secret: str = Field(description="Standard Webhooks signing secret (whsec_...)")


class RepToken(BaseModel):
    rep_id: uuid.UUID
    token: str = Field(description="Bearer token for this rep only; shown once")


class PoolIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    strategy: Strategy = Strategy.ROUND_ROBIN
    express: bool = Field(default=False, description="The closers: express SQLs go here first")
    members: list[uuid.UUID] = Field(default_factory=list)
    escalation: Literal["next_rep", "manager"] = "next_rep"
    manager_rep_id: uuid.UUID | None = None
    max_reassignments: int = Field(default=2, ge=0, le=20)

    @model_validator(mode="after")
    def _manager_needed(self) -> PoolIn:
        if self.escalation == "manager" and self.manager_rep_id is None:
            raise ValueError("escalation 'manager' needs manager_rep_id")
        return self


class PoolPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    strategy: Strategy | None = None
    express: bool | None = None
    members: list[uuid.UUID] | None = None
    escalation: Literal["next_rep", "manager"] | None = None
    manager_rep_id: uuid.UUID | None = None
    max_reassignments: int | None = Field(default=None, ge=0, le=20)


class PoolOut(BaseModel):
    id: uuid.UUID
    name: str
    strategy: Strategy
    express: bool
    members: list[uuid.UUID]
    escalation: str
    manager_rep_id: uuid.UUID | None
    max_reassignments: int


class ConditionIn(Strict):
    field: str = Field(
        min_length=1,
        max_length=80,
        description="What to compare: score, fit, engagement, express, stage, trigger_event, "
        "domain (company), email_domain, country (ISO code or name), region (na, latam, emea, "
        "apac, or the lead's own), segment (smb, mid_market, enterprise, or the lead's own), "
        "company_size / employees, industry, language (ISO 639-1), title, company; or "
        "traits.<name> for any raw trait",
        examples=["country"],
    )
    op: Literal[OPERATORS] = "eq"  # type: ignore[valid-type]
    value: Any = Field(default=None, examples=[["de", "at", "ch"]])

    @model_validator(mode="after")
    def _value_fits_op(self) -> ConditionIn:
        try:
            check_condition(self.field, self.op, self.value)
        except InvalidCondition as exc:
            raise ValueError(str(exc)) from None
        return self


class RuleIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    position: int = Field(default=100, ge=0, le=1_000_000, description="Lower is tried first")
    conditions: list[ConditionIn] = Field(min_length=1, max_length=50)
    pool_id: uuid.UUID
    enabled: bool = True


class RulePatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    position: int | None = Field(default=None, ge=0, le=1_000_000)
    conditions: list[ConditionIn] | None = Field(default=None, min_length=1, max_length=50)
    pool_id: uuid.UUID | None = None
    enabled: bool | None = None


class RuleOut(BaseModel):
    id: uuid.UUID
    name: str
    position: int
    conditions: list[dict[str, Any]]
    pool_id: uuid.UUID
    enabled: bool


class AccountIn(Strict):
    rep_id: uuid.UUID


class AccountOut(BaseModel):
    domain: str
    rep_id: uuid.UUID


def check_domain(raw: str) -> str:
    domain = normalise_domain(raw)
    labels = domain.split(".")
    if (
        len(labels) < 2
        or any(not label or len(label) > 63 for label in labels)
        or any(not c.isalnum() and c not in "-." for c in domain)
    ):
        raise ValueError(f"{raw!r} is not a company domain like 'acme.com'")
    return domain


class TrackIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    position: int = Field(default=100, ge=0, le=1_000_000)
    conditions: list[ConditionIn] = Field(default_factory=list, max_length=50)
    webhook_url: AnyHttpUrl
    sdr_pool_id: uuid.UUID | None = Field(
        default=None,
        description="Also give each MQL enrolled here to an SDR of this pool (a signed "
        "lead.sdr_task webhook, an assignment with stage 'mql'); absent: no SDR task",
    )


class TrackOut(BaseModel):
    id: uuid.UUID
    name: str
    position: int
    conditions: list[dict[str, Any]]
    webhook_url: str
    sdr_pool_id: uuid.UUID | None = None


class TrackCreated(TrackOut):
    webhook_secret: str


class ActivityIn(Strict):
    kind: ActivityKind
    rep_id: uuid.UUID | None = Field(default=None, description="Defaults to the assigned rep")
    reason: str | None = Field(default=None, max_length=1000)
    occurred_at: AwareDatetime | None = None
    activity_id: str | None = Field(
        default=None, max_length=128, description="Idempotency key; repeats are dropped downstream"
    )
    assignment_id: uuid.UUID | None = None
    bant: list[str] = Field(
        default_factory=list,
        max_length=4,
        description="On 'qualified': the BANT fields the rep confirmed, at least one of "
        f"{', '.join(BANT_FIELDS)}",
        examples=[["budget", "authority"]],
    )

    @model_validator(mode="after")
    def _fits_kind(self) -> ActivityIn:
        if self.kind == ActivityKind.REJECTED and not (self.reason or "").strip():
            raise ValueError("a rejection needs a 'reason'")
        unknown = [field for field in self.bant if field not in BANT_FIELDS]
        if unknown:
            raise ValueError(
                f"bant: unknown field(s) {', '.join(map(repr, unknown))}; "
                f"use {', '.join(BANT_FIELDS)}"
            )
        if self.kind == ActivityKind.QUALIFIED and not self.bant:
            raise ValueError(
                f"'qualified' needs 'bant': the fields the rep confirmed, at least one of "
                f"{', '.join(BANT_FIELDS)}"
            )
        if self.bant and self.kind != ActivityKind.QUALIFIED:
            raise ValueError("'bant' goes only with kind 'qualified'")
        # The same field twice says nothing more; keep the first of each.
        object.__setattr__(self, "bant", list(dict.fromkeys(self.bant)))
        return self


class ActivityAccepted(BaseModel):
    activity_id: str
    lead_id: str
    kind: ActivityKind


class AssignmentOut(BaseModel):
    assignment_id: uuid.UUID
    lead_id: str
    rep_id: uuid.UUID
    transition_id: str
    strategy: str
    express: bool
    status: str
    qualified_at: datetime
    assigned_at: datetime
    sla_due_at: datetime | None
    reassignments: int
    stage: str = Field(default="sql", description="sql, or mql for an SDR task")


class DeadLetterOut(BaseModel):
    id: int
    kind: str
    message_id: str
    rep_id: uuid.UUID | None
    target: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
