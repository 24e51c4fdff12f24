"""What applying a document would do: compare the file's entries with the database's and
list what to create, change and delete, per kind and name. Pure: plain data in and out.

Both sides are :class:`Item`s in the file's terms (references by rep email and pool
name, defaults filled in). An entry is matched to a row by its ``id`` when the file
gives one that exists, otherwise by its email (reps), name (pools, rules, tracks) or
domain (accounts); what matches nothing is created, and a row nothing matches is
deleted (a rep is archived, as ``DELETE /v1/reps/{id}`` does).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from baton_router.config_file.model import (
    DocumentInvalid,
    Loc,
    Problem,
    RoutingDocument,
    SecretRef,
    rep_key,
)
from baton_router.signing import SECRET_PREFIX

# In the order they are created; deleted in the reverse order.
KINDS = ("rep", "pool", "rule", "nurture_track", "account")
SECTIONS = {"rep": "reps", "pool": "pools", "rule": "rules", "nurture_track": "nurture_tracks",
            "account": "accounts"}  # fmt: skip
KEY_FIELD = {"rep": "email", "pool": "name", "rule": "name", "nurture_track": "name",
             "account": "domain"}  # fmt: skip
# What an absent field means; export leaves these out.
DEFAULTS: dict[str, dict[str, Any]] = {
    "rep": {"timezone": "UTC", "working_hours": None, "capacity": None, "weight": 1, "skills": {},
            "slack_webhook_url": None},
    "pool": {"strategy": "round_robin", "express": False, "members": [],
             "escalation": "next_rep", "manager": None, "max_reassignments": 2,
             "slack_webhook_url": None},
    "rule": {"position": 100, "enabled": True},
    "nurture_track": {"position": 100, "conditions": [], "sdr_pool": None},
    "account": {},
}  # fmt: skip
# The file's fields of each kind, in the order export writes them.
FIELDS = {
    "rep": ("email", "name", "webhook_url", "timezone", "working_hours", "capacity", "weight",
            "skills", "slack_webhook_url"),
    "pool": ("name", "strategy", "express", "members", "escalation", "manager",
             "max_reassignments", "slack_webhook_url"),
    "rule": ("name", "position", "pool", "enabled", "conditions"),
    "nurture_track": ("name", "position", "webhook_url", "sdr_pool", "conditions"),
    "account": ("domain", "owner"),
}  # fmt: skip
SECRET_FIELD = "webhook_secret"


@dataclass(frozen=True)
class Item:
    """One rep, pool, rule, track or account in the file's terms. ``secret``: the stored
    webhook secret (database side), or the one the file's reference resolved to (None:
    keep the stored one). ``loc``: where the file has it."""

    kind: str
    fields: Mapping[str, Any]
    id: uuid.UUID | None = None
    secret: str | None = field(default=None, repr=False)
    loc: Loc = ()

    @property
    def key(self) -> str:
        value = str(self.fields[KEY_FIELD[self.kind]])
        return rep_key(value) if self.kind == "rep" else value


@dataclass(frozen=True)
class Snapshot:
    """The database's routing configuration; ``taken_ids``: ids of archived reps."""

    items: list[Item]
    taken_ids: frozenset[uuid.UUID] = frozenset()


@dataclass(frozen=True)
class Change:
    action: Literal["create", "update", "delete"]
    item: Item  # the file's entry (create, update) or the row (delete)
    id: uuid.UUID | None = None  # the row's id; on create, the file's id when free
    before: Mapping[str, Any] = field(default_factory=dict)
    changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    changes: list[Change]

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    def __bool__(self) -> bool:
        return bool(self.changes)


def desired_items(doc: RoutingDocument, env: Mapping[str, str]) -> list[Item]:
    """The document's entries as items, secrets read from ``env``."""
    problems: list[Problem] = []

    def secret(ref: SecretRef | None, loc: Loc) -> str | None:
        if ref is None:
            return None
        value = env.get(ref.env)
        error = _secret_problem(ref.env, value)
        if error:
            problems.append(Problem((*loc, SECRET_FIELD), error))
        return value

    items: list[Item] = []
    for i, rep in enumerate(doc.reps):
        loc = ("reps", i)
        fields = rep.model_dump(
            mode="json", include={"email", "name", "webhook_url", *DEFAULTS["rep"]}
        )
        items.append(make_item("rep", fields, rep.id, secret(rep.webhook_secret, loc), loc))
    for i, pool in enumerate(doc.pools):
        fields = pool.model_dump(mode="json", exclude={"id"}, by_alias=True)
        fields["members"] = sorted({rep_key(m) for m in pool.members})
        if pool.manager_rep_id is not None:
            fields["manager"] = rep_key(pool.manager_rep_id)
        items.append(make_item("pool", fields, pool.id, loc=("pools", i)))
    for i, rule in enumerate(doc.rules):
        fields = rule.model_dump(mode="json", exclude={"id"}, by_alias=True)
        items.append(make_item("rule", fields, rule.id, loc=("rules", i)))
    for i, track in enumerate(doc.nurture_tracks):
        loc = ("nurture_tracks", i)
        fields = track.model_dump(mode="json", exclude={"id", SECRET_FIELD}, by_alias=True)
        ref = secret(track.webhook_secret, loc)
        items.append(make_item("nurture_track", fields, track.id, ref, loc))
    for i, account in enumerate(doc.accounts):
        fields = {"domain": account.domain, "owner": rep_key(account.rep_id)}
        items.append(make_item("account", fields, loc=("accounts", i)))
    if problems:
        raise DocumentInvalid(problems)
    return items


def make_item(
    kind: str,
    fields: Mapping[str, Any],
    id: uuid.UUID | None = None,
    secret: str | None = None,
    loc: Loc = (),
) -> Item:
    """An item with the kind's fields in order, absent or null ones at their default."""
    defaults = DEFAULTS[kind]
    full = {
        name: defaults.get(name) if fields.get(name) is None else fields[name]
        for name in FIELDS[kind]
    }
    return Item(kind, full, id, secret, loc)


def _secret_problem(name: str, value: str | None) -> str | None:
    if value is None:
        return f"the environment variable {name} is not set"
    try:
        key = base64.b64decode(value.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not value.startswith(SECRET_PREFIX) or not 24 <= len(key) <= 64:
        return f"{name} is not a webhook secret: give whsec_ and 24 to 64 base64-encoded bytes"
    return None


def make_plan(desired: list[Item], snapshot: Snapshot) -> Plan:
    """Creates, changes and deletes that make the database match ``desired``."""
    changes: list[Change] = []
    problems: list[Problem] = []
    for kind in KINDS:
        wanted = [i for i in desired if i.kind == kind]
        rows = [i for i in snapshot.items if i.kind == kind]
        matched, unmatched = _match(wanted, rows, problems)
        for item in wanted:
            row = matched.get(id(item))
            if row is None:
                free = item.id is not None and item.id not in snapshot.taken_ids
                changes.append(Change("create", item, item.id if free else None))
                continue
            changed = tuple(k for k in item.fields if item.fields[k] != row.fields.get(k))
            if item.secret is not None and item.secret != row.secret:
                changed += (SECRET_FIELD,)
            if changed:
                changes.append(Change("update", item, row.id, row.fields, changed))
        changes += [Change("delete", row, row.id) for row in unmatched]
    if problems:
        raise DocumentInvalid(problems)
    return Plan(changes)


def _match(
    wanted: list[Item], rows: list[Item], problems: list[Problem]
) -> tuple[dict[int, Item], list[Item]]:
    """Entries to rows: by id first, then by key among the rows left."""
    by_id = {row.id: row for row in rows if row.id is not None}
    matched: dict[int, Item] = {}
    used: set[int] = set()
    for item in wanted:
        row = by_id.get(item.id) if item.id is not None else None
        if row is not None:
            matched[id(item)] = row
            used.add(id(row))
    for item in wanted:
        if id(item) in matched:
            continue
        candidates = [r for r in rows if id(r) not in used and r.key == item.key]
        if len(candidates) > 1:
            problems.append(Problem(item.loc, (
                f"{len(candidates)} {SECTIONS[item.kind]} in the database have "
                f"{KEY_FIELD[item.kind]} {item.key!r}; give the id of the one you mean"
            )))  # fmt: skip
        elif candidates:
            matched[id(item)] = candidates[0]
            used.add(id(candidates[0]))
    return matched, [row for row in rows if id(row) not in used]


def render(plan: Plan) -> str:
    """The plan as a person reads it: one line per change, then the totals."""
    if not plan:
        return "No changes: the database matches the file."
    lines: list[str] = []
    for kind in KINDS:
        for change in (c for c in plan.changes if c.item.kind == kind):
            name = f"{kind.replace('_', ' ')} {change.item.key!r}"
            if change.action == "update":
                detail = "; ".join(_field_change(change, f) for f in change.changed)
                lines.append(f"  ~ change {name}: {detail}")
            elif change.action == "create":
                lines.append(f"  + create {name}")
            else:
                verb = "archive" if kind == "rep" else "delete"
                lines.append(f"  - {verb} {name}")
    lines.append(
        f"Plan: {plan.count('create')} to create, {plan.count('update')} to change, "
        f"{plan.count('delete')} to delete."
    )
    return "\n".join(lines)


def _field_change(change: Change, name: str) -> str:
    if name == SECRET_FIELD:
        return f"{name} replaced"
    before, after = change.before.get(name), change.item.fields[name]
    return f"{name} {_short(before)} → {_short(after)}"


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def export_document(snapshot: Snapshot) -> dict[str, Any]:
    """The database's configuration as a document: defaults left out, ids last."""
    document: dict[str, Any] = {"version": 1}
    for kind in KINDS:
        entries = []
        for item in snapshot.items:
            if item.kind != kind:
                continue
            defaults = DEFAULTS[kind]
            entry = {k: v for k, v in item.fields.items() if k not in defaults or v != defaults[k]}
            if item.id is not None:
                entry["id"] = str(item.id)
            entries.append(entry)
        document[SECTIONS[kind]] = entries
    return document
