"""Account owners from a CRM export (CSV) into the routing document.

The header row names the columns, in any order and case; other columns (the account's
name, industry, ...) are ignored:

- the account's domain: ``domain``, ``account_domain``, ``website`` or
  ``company_domain_name`` (a URL like ``https://www.acme.com/`` counts as ``acme.com``);
- its owner: ``owner_email`` (a rep's email) or ``owner_rep_id`` (a rep's id).

:func:`merge_accounts` returns the database's items with those owners set (and, with
``prune``, without accounts the file does not list), for the usual plan and apply.
Problems name the CSV line and column.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import EmailStr, TypeAdapter, ValidationError

from baton_router.api.models.accounts import check_domain
from baton_router.config_file.model import DocumentInvalid, Problem, rep_key
from baton_router.config_file.plan import Item, make_item

DOMAIN_COLUMNS = ("domain", "account_domain", "website", "company_domain_name")
OWNER_EMAIL_COLUMNS = ("owner_email",)
OWNER_ID_COLUMNS = ("owner_rep_id",)
_email = TypeAdapter(EmailStr)


@dataclass(frozen=True)
class OwnedAccount:
    domain: str
    owner: str  # the rep's email, compared case-blind
    line: int


def read_accounts(text: str, rep_emails: dict[uuid.UUID, str]) -> list[OwnedAccount]:
    """The rows of a CRM export; owners must be among ``rep_emails`` (id → email)."""
    reader = csv.DictReader(io.StringIO(text))
    columns = {_column(name): name for name in reader.fieldnames or []}
    domain_col = next((columns[c] for c in DOMAIN_COLUMNS if c in columns), None)
    email_col = next((columns[c] for c in OWNER_EMAIL_COLUMNS if c in columns), None)
    id_col = next((columns[c] for c in OWNER_ID_COLUMNS if c in columns), None)
    if domain_col is None or (email_col is None and id_col is None):
        raise DocumentInvalid([Problem(("header",), (
            f"needs a domain column ({', '.join(DOMAIN_COLUMNS)}) and an owner column "
            f"({', '.join(OWNER_EMAIL_COLUMNS + OWNER_ID_COLUMNS)})"
        ), 1)])  # fmt: skip
    known = {rep_key(email) for email in rep_emails.values()}
    rows, problems, seen = [], [], {}
    for row in reader:
        line = reader.line_num
        try:
            domain = check_domain(row.get(domain_col) or "")
        except ValueError as exc:
            problems.append(Problem((domain_col,), str(exc), line))
            continue
        owner = _owner(row, email_col, id_col, rep_emails, known)
        if isinstance(owner, Problem):
            problems.append(Problem(owner.loc, owner.message, line))
        elif domain in seen:
            again = f"{domain} is also on line {seen[domain]}"
            problems.append(Problem((domain_col,), again, line))
        else:
            seen[domain] = line
            rows.append(OwnedAccount(domain, owner, line))
    if problems:
        raise DocumentInvalid(problems)
    return rows


def _column(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def _owner(
    row: dict[str, Any],
    email_col: str | None,
    id_col: str | None,
    reps: dict[uuid.UUID, str],
    known: set[str],
) -> str | Problem:
    email = (row.get(email_col) or "").strip() if email_col else ""
    if email:
        try:
            key = rep_key(_email.validate_python(email))
        except ValidationError:
            return Problem((email_col or "",), f"{email!r} is not an email address")
        if key not in known:
            return Problem((email_col or "",), f"no rep with email {email!r}")
        return key
    raw_id = (row.get(id_col) or "").strip() if id_col else ""
    try:
        return rep_key(reps[uuid.UUID(raw_id)])
    except (ValueError, KeyError):
        column = id_col or email_col or ""
        return Problem((column,), f"no rep with id {raw_id!r}" if raw_id else "no owner given")


def merge_accounts(items: list[Item], accounts: list[OwnedAccount], prune: bool) -> list[Item]:
    """``items`` (the database's) with these accounts' owners set; with ``prune``,
    without the accounts the CSV does not list."""
    listed = {a.domain for a in accounts}
    kept = [
        i for i in items if i.kind != "account" or (i.key not in listed and not prune)
    ]
    return kept + [make_item("account", {"domain": a.domain, "owner": a.owner}) for a in accounts]
