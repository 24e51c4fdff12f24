"""Rep bodies: identity, profile (time zone, working hours, capacity, weight, skills),
availability, and the rep's token. Time zones, hours and skills are checked here, so
a bad value is a 422 naming the field."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    EmailStr,
    Field,
    StrictInt,
    UrlConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from baton_router.api.models.common import Strict, omittable
from baton_router.availability import InvalidCalendar, parse_timezone, parse_working_hours
from baton_router.territory import country_code, is_known_country, language_code
from baton_shared.instants import Instant

TimeZoneName = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "enum": sorted(available_timezones()), "examples": ["Europe/Berlin"]}
    ),
]
RepStatus = Literal["online", "away", "offline"]
SlackWebhookUrl = Annotated[
    AnyHttpUrl,
    UrlConstraints(max_length=2000),
    WithJsonSchema(
        {
            "type": "string",
            "format": "uri",
            "maxLength": 2000,
            "examples": ["https://hooks.slack.com/services/T000/B000/XXXX"],
        }
    ),
]
SkillName = Literal["regions", "countries", "industries", "segments", "languages"]


class OutOfOffice(Strict):
    start: Instant
    end: Instant

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

    timezone: TimeZoneName = omittable(description="IANA name, e.g. Europe/Berlin")
    working_hours: dict[str, list[str]] | None = Field(
        default=None,
        description="Weekly template in the rep's time zone: "
        '{"mon": ["09:00-17:00"], ...}; a missing day is off; absent: always on',
        examples=[{"mon": ["09:00-12:00", "13:00-17:00"], "tue": ["09:00-17:00"]}],
    )
    status: RepStatus = omittable()
    out_of_office: list[OutOfOffice] | None = None
    capacity: StrictInt | None = Field(default=None, ge=0, le=10_000, description="Max open leads")
    weight: StrictInt = omittable(ge=1, le=1000, description="Weighted round robin")
    skills: dict[SkillName, list[str]] = omittable(
        description="What the rep covers; a lead outside a non-empty list goes to someone "
        "else. regions (na, latam, emea, apac, or your own names), countries (ISO codes or "
        "names), industries, segments (smb, mid_market, enterprise, ...), languages "
        "(ISO 639-1). Stored canonical: lower case, countries and languages as codes",
        examples=[{"regions": ["emea"], "languages": ["de", "en"]}],
    )

    slack_webhook_url: SlackWebhookUrl | None = Field(
        default=None,
        description="A Slack incoming webhook that receives the rep's assignments (Block Kit, "
        "with one-click links); null: none (the pool's, when it has one)",
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
    name: str = omittable(min_length=1, max_length=200)
    email: EmailStr = omittable()
    webhook_url: AnyHttpUrl = omittable()


class Availability(Strict):
    status: RepStatus = omittable()
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
    slack_webhook_url: str | None = None


class RepCreated(RepOut):
    webhook_secret: str = Field(description="Standard Webhooks signing secret (whsec_...)")


class RepToken(BaseModel):
    rep_id: uuid.UUID
    token: str = Field(description="Bearer token for this rep only; shown once")
