"""The routing configuration document: reps, pools, rules, accounts and nurture tracks.

Each entry is the router API's request model (``RepIn``, ``PoolIn``, ``RuleIn``,
``TrackIn``, ``AccountIn``) with the same validation, plus an optional ``id``; where
the API takes an id of something else, the file names it instead: a rep by its
``email``, a pool by its ``name``. Secrets never appear, only a reference to the
environment variable that holds one. :func:`parse_document` validates and checks that
every reference resolves, raising :class:`DocumentInvalid` with each problem's path.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    EmailStr,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from baton_router.api.models.accounts import AccountIn, check_domain
from baton_router.api.models.common import Strict
from baton_router.api.models.nurture_tracks import TrackIn
from baton_router.api.models.pools import PoolIn
from baton_router.api.models.reps import RepIn
from baton_router.api.models.rules import RuleIn

Loc = tuple[str | int, ...]
EntryId = Field(
    default=None,
    description="The entry's id in the database; absent: matched by email/name, or created",
)
PoolName = Annotated[str, Field(min_length=1, max_length=100)]


@dataclass(frozen=True)
class Problem:
    """What is wrong and where: ``loc`` is the path in the document; ``line`` where the
    source knows it better than the path does."""

    loc: Loc
    message: str
    line: int | None = None


class DocumentInvalid(ValueError):
    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(f"{field_path(p.loc)}: {p.message}" for p in problems))
        self.problems = problems


def field_path(loc: Loc) -> str:
    """``("pools", 0, "members", 1)`` → ``pools[0].members[1]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def rep_key(email: str) -> str:
    """How a rep is referred to across the document: its email, compared case-blind."""
    return email.strip().lower()


class SecretRef(Strict):
    """A secret kept out of the file: the environment variable holding it on apply."""

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", examples=["BATON_REP_ADA_SECRET"])


class RepEntry(RepIn):
    id: uuid.UUID | None = EntryId
    webhook_secret: SecretRef | None = Field(
        default=None, description="Absent: an existing rep keeps its secret, a new one gets one"
    )

    @field_validator("status", "out_of_office", mode="before")
    @classmethod
    def _availability_is_the_reps(cls, value: Any) -> Any:
        raise ValueError(
            "availability belongs to the rep (PUT /v1/reps/{id}/availability); "
            "the configuration file never sets it"
        )


class PoolEntry(PoolIn):
    id: uuid.UUID | None = EntryId
    members: list[EmailStr] = Field(default_factory=list, description="Reps, by email")
    # The file names the manager by email, under ``manager``.
    manager_rep_id: EmailStr | None = Field(default=None, alias="manager")

    @model_validator(mode="after")
    def _manager_needed(self) -> PoolEntry:  # type: ignore[override]
        # Replaces PoolIn's check of the same name, to name the file's field.
        if self.escalation == "manager" and self.manager_rep_id is None:
            raise ValueError("escalation 'manager' needs manager")
        return self


class RuleEntry(RuleIn):
    id: uuid.UUID | None = EntryId
    # The file names the pool, under ``pool``.
    pool_id: PoolName = Field(alias="pool")  # type: ignore[assignment]


class TrackEntry(TrackIn):
    id: uuid.UUID | None = EntryId
    webhook_secret: SecretRef | None = Field(
        default=None, description="Absent: an existing track keeps its secret, a new one gets one"
    )
    # The file names the SDR pool, under ``sdr_pool``.
    sdr_pool_id: PoolName | None = Field(default=None, alias="sdr_pool")  # type: ignore[assignment]


class AccountEntry(AccountIn):
    domain: Annotated[str, AfterValidator(check_domain)]
    # The file names the owner by email, under ``owner``.
    rep_id: EmailStr = Field(alias="owner")  # type: ignore[assignment]


class RoutingDocument(Strict):
    version: Literal[1] = Field(description="The format's version; required")
    reps: list[RepEntry] = Field(default_factory=list)
    pools: list[PoolEntry] = Field(default_factory=list)
    rules: list[RuleEntry] = Field(default_factory=list)
    accounts: list[AccountEntry] = Field(default_factory=list)
    nurture_tracks: list[TrackEntry] = Field(default_factory=list)

    @field_validator("reps", "pools", "rules", "accounts", "nurture_tracks", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return [] if value is None else value  # ``accounts:`` with nothing under it


def parse_document(data: Any) -> RoutingDocument:
    """Validate a loaded YAML document, then every reference in it."""
    try:
        document = RoutingDocument.model_validate(data)
    except ValidationError as exc:
        raise DocumentInvalid([pydantic_problem(e) for e in exc.errors()]) from None
    problems = reference_problems(document)
    if problems:
        raise DocumentInvalid(problems)
    return document


def pydantic_problem(error: Any) -> Problem:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    return Problem(tuple(error["loc"]), message)


def reference_problems(doc: RoutingDocument) -> list[Problem]:
    """Names that must be unique, and references that must name an entry of the file."""
    problems = [
        *_duplicates("reps", "email", [rep_key(r.email) for r in doc.reps]),
        *_duplicates("pools", "name", [p.name for p in doc.pools]),
        *_duplicates("nurture_tracks", "name", [t.name for t in doc.nurture_tracks]),
        *_duplicates("accounts", "domain", [a.domain for a in doc.accounts]),
    ]
    for section in ("reps", "pools", "rules", "nurture_tracks"):
        ids = [entry.id for entry in getattr(doc, section)]
        problems += _duplicates(section, "id", [str(i) if i else None for i in ids])
    reps = {rep_key(r.email) for r in doc.reps}
    pools = {p.name for p in doc.pools}

    def unknown_rep(loc: Loc, email: str | None) -> Iterable[Problem]:
        if email is not None and rep_key(email) not in reps:
            yield Problem(loc, f"no rep with email {email!r} in this file")

    def unknown_pool(loc: Loc, name: str | None) -> Iterable[Problem]:
        if name is not None and name not in pools:
            yield Problem(loc, f"no pool named {name!r} in this file")

    for i, pool in enumerate(doc.pools):
        for j, member in enumerate(pool.members):
            problems += unknown_rep(("pools", i, "members", j), member)
        problems += unknown_rep(("pools", i, "manager"), pool.manager_rep_id)
    for i, rule in enumerate(doc.rules):
        problems += unknown_pool(("rules", i, "pool"), rule.pool_id)
    for i, track in enumerate(doc.nurture_tracks):
        problems += unknown_pool(("nurture_tracks", i, "sdr_pool"), track.sdr_pool_id)
    for i, account in enumerate(doc.accounts):
        problems += unknown_rep(("accounts", i, "owner"), account.rep_id)
    return problems


def _duplicates(section: str, field: str, values: list[str | None]) -> list[Problem]:
    counts = Counter(v for v in values if v is not None)
    return [
        Problem((section, i, field), f"{value!r} appears more than once in {section}")
        for i, value in enumerate(values)
        if value is not None and counts[value] > 1 and values.index(value) != i
    ]
