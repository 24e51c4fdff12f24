"""The routing configuration file against PostgreSQL: read the database as a
:class:`~baton_router.config_file.plan.Snapshot`, and apply a plan in one transaction.

:meth:`RoutingDocumentStore.plan_and_apply` takes the routing lock (so a routing batch
decides against the configuration before the apply or after it, never half of it) and
computes the plan from the snapshot read inside that same transaction. Running routers
read the team afresh for every batch; queued leads the change makes assignable are
taken up by the next queue drain (``BATON_ROUTER_DRAIN_SECONDS``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_router.config_file.plan import (
    KINDS,
    Change,
    Item,
    Plan,
    Snapshot,
    make_item,
    make_plan,
)
from baton_router.secret_box import SecretBox
from baton_router.signing import new_secret
from baton_router.store.configuration import archive_rep_rows
from baton_router.store.locks import ROUTING_LOCK
from baton_router.tables import Account, NurtureTrack, Pool, PoolMember, Rep, RoutingRule

MODELS: dict[str, Any] = {"rep": Rep, "pool": Pool, "rule": RoutingRule,
                          "nurture_track": NurtureTrack}  # fmt: skip
ACCOUNTS_PER_STATEMENT = 5000  # two parameters each, under PostgreSQL's 32767
# The columns that hold a file field as it is (references are resolved separately).
COLUMNS = {
    "rep": ("name", "email", "webhook_url", "timezone", "working_hours", "capacity", "weight",
            "skills", "slack_webhook_url"),
    "pool": ("name", "strategy", "express", "escalation", "max_reassignments",
             "slack_webhook_url"),
    "rule": ("name", "position", "enabled", "conditions"),
    "nurture_track": ("name", "position", "webhook_url", "conditions"),
}  # fmt: skip


class RoutingDocumentStore:
    """``box`` opens the stored webhook secrets (to plan) and seals the ones written."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox | None = None):
        self._sessions = sessions
        self._box = box or SecretBox.local()

    async def snapshot(self) -> Snapshot:
        async with self._sessions() as session:
            return await read_snapshot(session, self._box)

    async def plan_and_apply(
        self, desired_of: Callable[[Snapshot], list[Item]], dry_run: bool, now: datetime
    ) -> tuple[Plan, list[tuple[Item, str]]]:
        """Under the routing lock: read the database, plan the changes to the items
        ``desired_of`` the snapshot, and (unless ``dry_run``) apply them; one transaction.
        Returns the plan and the webhook secrets made (see :func:`apply_plan`)."""
        async with self._sessions() as session:
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ROUTING_LOCK})
            snapshot = await read_snapshot(session, self._box)
            plan = make_plan(desired_of(snapshot), snapshot)
            if dry_run or not plan:
                await session.rollback()
                return plan, []
            made = await apply_plan(session, plan, now, self._box)
            await session.commit()
            return plan, made


async def read_snapshot(session: AsyncSession, box: SecretBox) -> Snapshot:
    """Reps not archived, pools, rules, nurture tracks and accounts, in the file's terms."""
    all_reps = (await session.scalars(select(Rep).order_by(Rep.created_at))).all()
    reps = [r for r in all_reps if r.archived_at is None]
    email = {r.id: r.email.lower() for r in reps}
    pools = (await session.scalars(select(Pool).order_by(Pool.created_at))).all()
    pool_name = {p.id: p.name for p in pools}
    members: dict[uuid.UUID, list[str]] = {}
    for m in (await session.scalars(select(PoolMember))).all():
        members.setdefault(m.pool_id, []).append(email[m.rep_id])
    rules = await session.scalars(
        select(RoutingRule).order_by(RoutingRule.position, RoutingRule.created_at)
    )
    tracks = await session.scalars(
        select(NurtureTrack).order_by(NurtureTrack.position, NurtureTrack.created_at)
    )
    accounts = await session.scalars(select(Account).order_by(Account.domain))
    items = [
        make_item("rep", _columns(r, COLUMNS["rep"]), r.id, box.open(r.webhook_secret).current)
        for r in reps
    ]
    items += [
        make_item("pool", {
            **_columns(p, COLUMNS["pool"]),
            "members": sorted(members.get(p.id, [])),
            "manager": email.get(p.manager_rep_id) if p.manager_rep_id else None,
        }, p.id)
        for p in pools
    ]  # fmt: skip
    items += [
        make_item("rule", {
            **_columns(r, COLUMNS["rule"]),
            "pool": pool_name[r.pool_id],
        }, r.id)
        for r in rules
    ]  # fmt: skip
    items += [
        make_item("nurture_track", {
            **_columns(t, COLUMNS["nurture_track"]),
            "sdr_pool": pool_name.get(t.sdr_pool_id) if t.sdr_pool_id else None,
        }, t.id, box.open(t.webhook_secret).current)
        for t in tracks
    ]  # fmt: skip
    items += [
        make_item("account", {"domain": a.domain, "owner": email[a.rep_id]}) for a in accounts
    ]
    archived = frozenset(r.id for r in all_reps if r.archived_at is not None)
    return Snapshot(items, archived)


def _columns(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in names}


async def apply_plan(
    session: AsyncSession, plan: Plan, now: datetime, box: SecretBox
) -> list[tuple[Item, str]]:
    """Deletes (accounts first, reps last), then creates and changes (reps first). Returns
    the webhook secrets made for new reps and tracks whose entry named none (stored
    sealed with ``box``)."""
    deletes = [c for c in plan.changes if c.action == "delete"]
    domains = [c.item.key for c in deletes if c.item.kind == "account"]
    if domains:
        await session.execute(delete(Account).where(Account.domain.in_(domains)))
    for change in reversed([c for c in deletes if c.item.kind != "account"]):
        await _delete(session, change, now)
    made: list[tuple[Item, str]] = []
    reps: dict[str, uuid.UUID] = {}
    pools: dict[str, uuid.UUID] = {}
    for kind in KINDS:
        changes = [c for c in plan.changes if c.action != "delete" and c.item.kind == kind]
        if kind == "account":
            await _put_accounts(session, changes, reps)
            continue
        for change in changes:
            fields = change.item.fields
            row = await _row(session, change)
            if kind in ("rep", "nurture_track"):
                secret = change.item.secret or (new_secret() if change.action == "create" else None)
                if secret is not None:
                    row.webhook_secret = box.seal(secret)
                    if change.item.secret is None:
                        made.append((change.item, secret))
            _set(row, fields, COLUMNS[kind])
            if kind == "pool":
                row.manager_rep_id = reps.get(fields["manager"] or "")
                await session.flush()
                await _set_members(session, row.id, [reps[e] for e in fields["members"]])
            elif kind == "rule":
                row.pool_id = pools[fields["pool"]]
            elif kind == "nurture_track":
                row.sdr_pool_id = pools.get(fields["sdr_pool"] or "")
        await session.flush()
        if kind == "rep":
            live = await session.execute(select(Rep.email, Rep.id).where(Rep.archived_at.is_(None)))
            reps = {email.lower(): rep_id for email, rep_id in live.all()}
        elif kind == "pool":
            pools = dict((await session.execute(select(Pool.name, Pool.id))).all())
    return made


async def _put_accounts(
    session: AsyncSession, changes: list[Change], reps: dict[str, uuid.UUID]
) -> None:
    """New and changed owners as upserts (an account whose owner was archived above is
    gone from the table by now, and comes back with its new owner)."""
    rows = [{"domain": c.item.key, "rep_id": reps[c.item.fields["owner"]]} for c in changes]
    for start in range(0, len(rows), ACCOUNTS_PER_STATEMENT):
        upsert = insert(Account).values(rows[start : start + ACCOUNTS_PER_STATEMENT])
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=[Account.domain], set_={"rep_id": upsert.excluded.rep_id}
            )
        )


async def _delete(session: AsyncSession, change: Change, now: datetime) -> None:
    """Delete a track, rule or pool; archive a rep."""
    kind = change.item.kind
    if kind == "rep":
        rep = await session.get(Rep, change.id, with_for_update=True)
        if rep is not None:
            await archive_rep_rows(session, rep, now)
    else:
        model = MODELS[kind]
        await session.execute(delete(model).where(model.id == change.id))


async def _row(session: AsyncSession, change: Change) -> Any:
    """The row a create or update writes to (a new one, added to the session, on create)."""
    kind = change.item.kind
    model = MODELS[kind]
    if change.action == "update":
        return await session.get(model, change.id, with_for_update=True)
    row = model(id=change.id or uuid.uuid4())
    if kind == "rep":
        row.status, row.out_of_office = "online", []
    session.add(row)
    return row


def _set(row: Any, fields: Any, names: tuple[str, ...]) -> None:
    for name in names:
        setattr(row, name, fields[name])


async def _set_members(session: AsyncSession, pool_id: uuid.UUID, reps: list[Any]) -> None:
    """Members as listed; those who stay keep their weighted-round-robin state."""
    current = set(
        await session.scalars(select(PoolMember.rep_id).where(PoolMember.pool_id == pool_id))
    )
    wanted = set(reps)
    if current - wanted:
        await session.execute(
            delete(PoolMember).where(
                PoolMember.pool_id == pool_id, PoolMember.rep_id.in_(current - wanted)
            )
        )
    session.add_all(PoolMember(pool_id=pool_id, rep_id=r) for r in wanted - current)
