"""The routing configuration in PostgreSQL: reps, pools, rules, accounts, nurture tracks,
and the reads the API makes of reps' loads and assignments.

Inputs arrive validated by the API models; this module checks what only the database
knows (a rep id that does not exist, a name already taken) and raises
:class:`InvalidReference` / :class:`NotFound` naming the field, which the API maps to
409 / 404.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from baton_router.secret_box import SecretBox
from baton_router.store.nurture import tracks
from baton_router.tables import (
    Account,
    AssignmentRow,
    Base,
    NurtureTrack,
    Pool,
    PoolMember,
    Rep,
    RoutingRule,
)

T = TypeVar("T")


class NotFound(LookupError):
    def __init__(self, what: str, key: object):
        super().__init__(f"no {what} {key}")
        self.what, self.key = what, key


class InvalidReference(ValueError):
    """The input names something that does not exist (``rule`` ``unknown_reference``) or
    a name already taken (``already_exists``); ``field`` is its path."""

    def __init__(self, field: tuple[str | int, ...], message: str, rule: str = "unknown_reference"):
        super().__init__(f"{'.'.join(map(str, field))}: {message}")
        self.field, self.message, self.rule = field, message, rule


async def archive_rep_rows(session: AsyncSession, rep: Rep, now: datetime) -> None:
    """Archive ``rep`` (locked by the caller): offline, token revoked, out of every pool,
    its accounts released. Its assignments stay as history."""
    rep.archived_at, rep.status, rep.token_hash = now, "offline", None
    await session.execute(delete(PoolMember).where(PoolMember.rep_id == rep.id))
    await session.execute(delete(Account).where(Account.rep_id == rep.id))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConfigStore:
    """Webhook secrets are sealed with ``box`` as they are written (``secret_box.py``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox | None = None):
        self._sessions = sessions
        self._box = box or SecretBox.local()

    async def _delete(self, model: type[Base], key: object, what: str) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(model, key)
            if row is None:
                raise NotFound(what, key)
            await session.delete(row)

    async def _all(self, query: Select[tuple[T]]) -> list[T]:
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())

    # -- reps --------------------------------------------------------------------------

    async def create_rep(
        self, name: str, email: str, webhook_url: str, secret: str, **profile: Any
    ) -> Rep:
        async with self._sessions.begin() as session:
            rep = Rep(
                id=uuid.uuid4(),
                name=name,
                email=email,
                webhook_url=webhook_url,
                webhook_secret=self._box.seal(secret),
                status=profile.pop("status", "online"),
                timezone=profile.pop("timezone", "UTC"),
                out_of_office=profile.pop("out_of_office", []),
                weight=profile.pop("weight", 1),
                skills=profile.pop("skills", {}),
                **profile,
            )
            session.add(rep)
        return rep

    async def list_reps(self) -> list[Rep]:
        """Reps not archived, oldest first."""
        return await self._all(
            select(Rep).where(Rep.archived_at.is_(None)).order_by(Rep.created_at)
        )

    async def rep_loads(self, live_only: bool = False) -> dict[uuid.UUID, int]:
        """Each rep's open leads (what capacity is checked against); ``live_only``: reps
        not archived."""
        query = select(Rep.id, Rep.open_leads)
        if live_only:
            query = query.where(Rep.archived_at.is_(None))
        async with self._sessions() as session:
            return dict((await session.execute(query)).all())

    async def get_rep(self, rep_id: uuid.UUID) -> Rep:
        async with self._sessions() as session:
            rep = await session.get(Rep, rep_id)
        if rep is None or rep.archived_at is not None:
            raise NotFound("rep", rep_id)
        return rep

    async def update_rep(self, rep_id: uuid.UUID, changes: dict[str, Any]) -> Rep:
        async with self._sessions.begin() as session:
            rep = await session.get(Rep, rep_id, with_for_update=True)
            if rep is None or rep.archived_at is not None:
                raise NotFound("rep", rep_id)
            for name, value in changes.items():
                setattr(rep, name, value)
        return rep

    async def archive_rep(self, rep_id: uuid.UUID, now: datetime) -> None:
        """Reps are archived, not deleted: their assignments stay as history."""
        async with self._sessions.begin() as session:
            rep = await session.get(Rep, rep_id, with_for_update=True)
            if rep is None or rep.archived_at is not None:
                raise NotFound("rep", rep_id)
            await archive_rep_rows(session, rep, now)

    async def set_token(self, rep_id: uuid.UUID, token: str) -> None:
        await self.update_rep(rep_id, {"token_hash": token_hash(token)})

    async def rep_for_token(self, token: str) -> Rep | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(Rep).where(Rep.token_hash == token_hash(token), Rep.archived_at.is_(None))
            )

    async def assignments_for_lead(self, lead_id: str) -> list[AssignmentRow]:
        return await self._all(
            select(AssignmentRow)
            .where(AssignmentRow.lead_id == lead_id)
            .order_by(AssignmentRow.assigned_at)
        )

    async def current_assignment(self, lead_id: str) -> AssignmentRow | None:
        """The lead's open assignment, else its latest (a merge can leave a lead's open
        assignment older than one it closed: ``store.merges``)."""
        async with self._sessions() as session:
            return await session.scalar(
                select(AssignmentRow)
                .where(AssignmentRow.lead_id == lead_id)
                .order_by(
                    (AssignmentRow.status == "open").desc(),
                    AssignmentRow.assigned_at.desc(),
                    AssignmentRow.turn.desc(),
                )
                .limit(1)
            )

    async def _check_reps(
        self, session: AsyncSession, rep_ids: list[uuid.UUID], field: str
    ) -> None:
        known = set(
            (
                await session.scalars(
                    select(Rep.id).where(Rep.id.in_(rep_ids), Rep.archived_at.is_(None))
                )
            ).all()
        )
        for i, rep_id in enumerate(rep_ids):
            if rep_id not in known:
                raise InvalidReference(
                    (field, i) if field == "members" else (field,), f"no rep {rep_id}"
                )

    # -- pools -------------------------------------------------------------------------

    async def create_pool(self, fields: dict[str, Any], members: list[uuid.UUID]) -> Pool:
        async with self._sessions.begin() as session:
            await self._check_unique_pool(session, fields["name"])
            await self._check_reps(session, members, "members")
            if fields.get("manager_rep_id"):
                await self._check_reps(session, [fields["manager_rep_id"]], "manager_rep_id")
            pool = Pool(id=uuid.uuid4(), **fields)
            session.add(pool)
            await session.flush()
            session.add_all(PoolMember(pool_id=pool.id, rep_id=r) for r in dict.fromkeys(members))
        return pool

    async def _check_unique_pool(
        self, session: AsyncSession, name: str, pool_id: uuid.UUID | None = None
    ) -> None:
        existing = await session.scalar(select(Pool.id).where(Pool.name == name))
        if existing is not None and existing != pool_id:
            raise InvalidReference(("name",), f"a pool named {name!r} exists", "already_exists")

    async def update_pool(
        self, pool_id: uuid.UUID, fields: dict[str, Any], members: list[uuid.UUID] | None
    ) -> Pool:
        async with self._sessions.begin() as session:
            pool = await session.get(Pool, pool_id, with_for_update=True)
            if pool is None:
                raise NotFound("pool", pool_id)
            if "name" in fields:
                await self._check_unique_pool(session, fields["name"], pool_id)
            if fields.get("manager_rep_id"):
                await self._check_reps(session, [fields["manager_rep_id"]], "manager_rep_id")
            for name, value in fields.items():
                setattr(pool, name, value)
            if members is not None:
                await self._check_reps(session, members, "members")
                await session.execute(delete(PoolMember).where(PoolMember.pool_id == pool_id))
                session.add_all(
                    PoolMember(pool_id=pool_id, rep_id=r) for r in dict.fromkeys(members)
                )
        return pool

    async def list_pools(self) -> list[tuple[Pool, list[uuid.UUID]]]:
        async with self._sessions() as session:
            pools = (await session.scalars(select(Pool).order_by(Pool.created_at))).all()
            members = (await session.scalars(select(PoolMember))).all()
        return [(p, [m.rep_id for m in members if m.pool_id == p.id]) for p in pools]

    async def get_pool(self, pool_id: uuid.UUID) -> tuple[Pool, list[uuid.UUID]]:
        for pool, members in await self.list_pools():
            if pool.id == pool_id:
                return pool, members
        raise NotFound("pool", pool_id)

    async def delete_pool(self, pool_id: uuid.UUID) -> None:
        await self._delete(Pool, pool_id, "pool")

    # -- rules -------------------------------------------------------------------------

    async def create_rule(self, fields: dict[str, Any]) -> RoutingRule:
        async with self._sessions.begin() as session:
            if await session.get(Pool, fields["pool_id"]) is None:
                raise InvalidReference(("pool_id",), f"no pool {fields['pool_id']}")
            rule = RoutingRule(id=uuid.uuid4(), **fields)
            session.add(rule)
        return rule

    async def update_rule(self, rule_id: uuid.UUID, fields: dict[str, Any]) -> RoutingRule:
        async with self._sessions.begin() as session:
            rule = await session.get(RoutingRule, rule_id, with_for_update=True)
            if rule is None:
                raise NotFound("rule", rule_id)
            if "pool_id" in fields and await session.get(Pool, fields["pool_id"]) is None:
                raise InvalidReference(("pool_id",), f"no pool {fields['pool_id']}")
            for name, value in fields.items():
                setattr(rule, name, value)
        return rule

    async def list_rules(self) -> list[RoutingRule]:
        return await self._all(
            select(RoutingRule).order_by(RoutingRule.position, RoutingRule.created_at)
        )

    async def get_rule(self, rule_id: uuid.UUID) -> RoutingRule:
        async with self._sessions() as session:
            rule = await session.get(RoutingRule, rule_id)
        if rule is None:
            raise NotFound("rule", rule_id)
        return rule

    async def delete_rule(self, rule_id: uuid.UUID) -> None:
        await self._delete(RoutingRule, rule_id, "rule")

    # -- accounts ----------------------------------------------------------------------

    async def put_account(self, domain: str, rep_id: uuid.UUID) -> Account:
        async with self._sessions.begin() as session:
            await self._check_reps(session, [rep_id], "rep_id")
            account = await session.get(Account, domain, with_for_update=True)
            if account is None:
                account = Account(domain=domain, rep_id=rep_id)
                session.add(account)
            else:
                account.rep_id = rep_id
        return account

    async def list_accounts(self) -> list[Account]:
        return await self._all(select(Account).order_by(Account.domain))

    async def delete_account(self, domain: str) -> None:
        await self._delete(Account, domain, "account")

    # -- nurture tracks ----------------------------------------------------------------

    async def create_track(self, fields: dict[str, Any]) -> NurtureTrack:
        try:
            async with self._sessions.begin() as session:
                pool_id = fields.get("sdr_pool_id")
                if pool_id is not None and await session.get(Pool, pool_id) is None:
                    raise InvalidReference(("sdr_pool_id",), f"no pool {pool_id}")
                sealed = self._box.seal(fields["webhook_secret"])
                track = NurtureTrack(id=uuid.uuid4(), **(fields | {"webhook_secret": sealed}))
                session.add(track)
        except IntegrityError:
            raise InvalidReference(
                ("name",), f"a track named {fields['name']!r} exists", "already_exists"
            ) from None
        return track

    async def list_tracks(self) -> list[NurtureTrack]:
        async with self._sessions() as session:
            return await tracks(session)

    async def delete_track(self, track_id: uuid.UUID) -> None:
        await self._delete(NurtureTrack, track_id, "nurture track")
