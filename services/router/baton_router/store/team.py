"""The team as routing sees it, read under the routing lock.

:class:`TeamCache` keeps the team's configuration in memory (reps' calendars, skills,
webhooks; pools and their members; rules), tagged with ``router.team_version``, which
the tables' triggers bump with every change of it (migration 0009). Per batch,
:meth:`TeamCache.load` takes ``ROUTING_LOCK`` (and ``OUTBOX_LOCK`` with it when the
transaction will lease outbox rows) and reads in one statement: the version, the owners
of the leads' domains, the counters (open leads, last turn, weighted-round-robin state)
of the members of the pools the batch's leads can go to (:func:`pools_considered`:
express pools, the first matching rule's) and fresh turn numbers. So a batch reads rows
in proportion to its leads and their pools' sizes, not to the number of reps, pools or
accounts; only a lead no rule matches (the default pool: every rep) reads every rep's
counters. A changed version reloads the configuration first. The result is a
:class:`Team` of plain routing inputs that a batch updates in memory as it decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from baton_router.availability import Calendar, parse_working_hours
from baton_router.routing import (
    Condition,
    Decision,
    LeadFacts,
    Pool,
    RepState,
    Rule,
    pools_considered,
)
from baton_router.store.locks import OUTBOX_LOCK, ROUTING_LOCK
from baton_router.strategies import Strategy

CONFIG_QUERY = text(
    """
    SELECT
      (SELECT version FROM router.team_version),
      (SELECT coalesce(json_agg(json_build_object(
         'id', id, 'status', status, 'timezone', timezone, 'working_hours', working_hours,
         'out_of_office', out_of_office, 'capacity', capacity, 'weight', weight,
         'skills', skills, 'last_turn', last_turn, 'open_leads', open_leads,
         'disabled', webhook_disabled_at IS NOT NULL, 'url', webhook_url,
         'secret', webhook_secret, 'slack', slack_webhook_url)), '[]')
       FROM router.reps WHERE archived_at IS NULL),
      (SELECT coalesce(json_agg(json_build_object(
         'id', id, 'name', name, 'strategy', strategy, 'express', express,
         'slack', slack_webhook_url)), '[]')
       FROM router.pools),
      (SELECT coalesce(json_agg(json_build_object(
         'pool_id', pool_id, 'rep_id', rep_id, 'wrr_current', wrr_current)), '[]')
       FROM router.pool_members),
      (SELECT coalesce(json_agg(json_build_object(
         'id', id, 'pool_id', pool_id, 'conditions', conditions)
         ORDER BY position, created_at), '[]')
       FROM router.routing_rules WHERE enabled)
    """
)

# The counters of every rep: only for a batch with a lead that no rule matches.
_EVERY_REP = (
    "SELECT json_agg(json_build_array(id, open_leads, last_turn)) "
    "FROM router.reps WHERE archived_at IS NULL"
)
_BATCH_QUERY = """
    SELECT
      (SELECT version FROM router.team_version),
      (SELECT json_agg(json_build_array(a.domain, a.rep_id, r.open_leads, r.last_turn))
       FROM router.accounts AS a JOIN router.reps AS r ON r.id = a.rep_id
       WHERE a.domain = ANY(CAST(:domains AS text[]))),
      (SELECT json_agg(json_build_array(m.pool_id, m.rep_id, m.wrr_current,
         -- a subquery per member: one index lookup each, never a scan of every rep
         (SELECT json_build_array(open_leads, last_turn) FROM router.reps WHERE id = m.rep_id)))
       FROM router.pool_members AS m WHERE m.pool_id = ANY(CAST(:pools AS uuid[]))),
      ({every}),
      (SELECT array_agg(nextval('router.assignment_turn')) FROM generate_series(1, :n))
    """
BATCH_QUERY = text(_BATCH_QUERY.format(every="SELECT NULL"))
BATCH_QUERY_EVERY_REP = text(_BATCH_QUERY.format(every=_EVERY_REP))


@dataclass
class Team:
    """The team as routing sees it, updated in memory as a batch is decided."""

    reps: dict[uuid.UUID, RepState]
    pools: list[Pool]
    rules: list[Rule] = field(default_factory=list)
    targets: dict[uuid.UUID, tuple[str, str] | None] = field(default_factory=dict)
    accounts: dict[str, uuid.UUID] = field(default_factory=dict)  # domain → owning rep
    # rep or pool id → its Slack incoming webhook (those that have one)
    slack_urls: dict[uuid.UUID, str] = field(default_factory=dict)
    turns: list[int] = field(default_factory=list)  # fresh round-robin turn numbers
    # Per lead of the batch, its first matching rule (None: none matches), found once.
    first_rules: list[Rule | None] = field(default_factory=list)

    def record(self, decision: Decision, turn: int) -> None:
        rep = self.reps[decision.rep_id]
        self.reps[decision.rep_id] = replace(rep, open_leads=rep.open_leads + 1, last_turn=turn)
        if decision.pool_id is not None:
            self.pools = [
                replace(p, current={**p.current, **decision.pool_current})
                if p.pool_id == decision.pool_id
                else p
                for p in self.pools
            ]


@dataclass(frozen=True)
class TeamConfig:
    """The team's configuration at one ``version``, with the counters as they were then
    (the counters a batch uses are read afresh)."""

    version: int
    reps: dict[uuid.UUID, RepState]
    pools: list[Pool]
    rules: list[Rule]
    targets: dict[uuid.UUID, tuple[str, str] | None]
    slack_urls: dict[uuid.UUID, str]
    ids: dict[str, uuid.UUID] = field(default_factory=dict)  # reps' and pools' ids, parsed

    def needs(
        self, leads: Iterable[LeadFacts], pool_ids: set[uuid.UUID] | None
    ) -> tuple[set[uuid.UUID], bool, list[Rule | None]]:
        """The pools whose members' counters a batch needs, whether it needs every rep's,
        and each lead's first matching rule: ``pool_ids`` when given (SDR tasks), else
        what each lead's routing may consider (:func:`pools_considered`)."""
        if pool_ids is not None:
            return pool_ids, False, []
        pools: set[uuid.UUID] = set()
        matched: list[Rule | None] = []
        for lead in leads:
            considered, rule = pools_considered(lead, self.pools, self.rules)
            pools |= considered
            matched.append(rule)
        return pools, None in matched, matched


class TeamCache:
    """The team's configuration of one database, kept between batches while its version
    holds."""

    def __init__(self) -> None:
        self._config: TeamConfig | None = None

    async def load(
        self,
        session: AsyncSession,
        leads: list[LeadFacts],
        pool_ids: set[uuid.UUID] | None = None,
        outbox_lock: bool = False,
        turns: int = 0,
    ) -> Team:
        """Lock, then the team for deciding ``leads`` (in ``pool_ids`` when given) with
        ``turns`` fresh turn numbers: one statement while the configuration holds."""
        if outbox_lock:
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:k), pg_advisory_xact_lock(:o)"),
                {"k": ROUTING_LOCK, "o": OUTBOX_LOCK},
            )
        else:
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ROUTING_LOCK})
        domains = sorted({lead.domain for lead in leads if lead.domain})
        config = self._config or await self._reload(session)
        row = await _batch_row(session, config, leads, pool_ids, domains, turns)
        if row[0] != config.version:
            config = await self._reload(session)
            row = await _batch_row(session, config, leads, pool_ids, domains, turns)
        return _team_of(config, row)

    async def _reload(self, session: AsyncSession) -> TeamConfig:
        row = (await session.execute(CONFIG_QUERY)).one()
        version, reps, pools, members, rules = (
            orjson.loads(v) if isinstance(v, str | bytes) else v for v in row
        )
        self._config = TeamConfig(
            version=version,
            reps={uuid.UUID(r["id"]): rep_state_of(r) for r in reps},
            targets={
                uuid.UUID(r["id"]): None if r["disabled"] else (r["url"], r["secret"]) for r in reps
            },
            pools=pools_of(pools, members),
            rules=[
                Rule(
                    uuid.UUID(r["id"]),
                    uuid.UUID(r["pool_id"]),
                    tuple(Condition(**c) for c in r["conditions"]),
                )
                for r in rules
            ],
            slack_urls={uuid.UUID(r["id"]): r["slack"] for r in (*reps, *pools) if r["slack"]},
            ids={r["id"]: uuid.UUID(r["id"]) for r in (*reps, *pools)},
        )
        return self._config


async def _batch_row(
    session: AsyncSession,
    config: TeamConfig,
    leads: list[LeadFacts],
    pool_ids: set[uuid.UUID] | None,
    domains: list[str],
    turns: int,
) -> tuple[Any, ...]:
    """The batch's statement: version, owners, members' counters, maybe every rep's,
    turns; and each lead's first matching rule."""
    pools, every, matched = config.needs(leads, pool_ids)
    query = BATCH_QUERY_EVERY_REP if every else BATCH_QUERY
    row = (
        await session.execute(query, {"domains": domains, "pools": sorted(pools), "n": turns})
    ).one()
    return (*(orjson.loads(v) if isinstance(v, str | bytes) else v for v in row), matched)


def _team_of(config: TeamConfig, row: tuple[Any, ...]) -> Team:
    """The configuration with the counters and owners the batch read. Fresh counters are
    kept in the configuration too, so the next batch finds most of them unchanged."""
    _, owners, members, every, drawn, matched = row
    ids = config.ids
    counters = [(rep, n, turn) for _, rep, n, turn in owners or ()]
    counters += [(rep, *state) for _, rep, _, state in members or () if state]
    for rep_id, open_leads, last_turn in [*counters, *(every or ())]:
        rep = config.reps.get(key := ids.get(rep_id) or uuid.UUID(rep_id))
        if rep is not None and (rep.open_leads, rep.last_turn) != (open_leads, last_turn):
            config.reps[key] = replace(rep, open_leads=open_leads, last_turn=last_turn)
    current: dict[uuid.UUID, dict[uuid.UUID, float]] = {}
    for pool_id, rep_id, wrr, _ in members or ():
        pool = current.setdefault(ids.get(pool_id) or uuid.UUID(pool_id), {})
        pool[ids.get(rep_id) or uuid.UUID(rep_id)] = float(wrr)
    return Team(
        reps=dict(config.reps),
        pools=[
            replace(p, current=current[p.pool_id]) if p.pool_id in current else p
            for p in config.pools
        ],
        rules=config.rules,
        targets=config.targets,
        accounts={domain: ids.get(rep) or uuid.UUID(rep) for domain, rep, _, _ in owners or ()},
        slack_urls=config.slack_urls,
        turns=sorted(drawn or []),
        first_rules=matched,
    )


def rep_state_of(row: dict[str, Any]) -> RepState:
    """A rep as the team query returns it (JSON), as routing sees it."""
    return RepState(
        rep_id=uuid.UUID(row["id"]),
        status=row["status"],
        calendar=Calendar(
            timezone=row["timezone"] or "UTC",
            hours=parse_working_hours(row["working_hours"]),
            out_of_office=tuple(
                (datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"]))
                for r in row["out_of_office"] or []
            ),
        ),
        capacity=row["capacity"],
        weight=row["weight"],
        skills=row["skills"] or {},
        open_leads=row["open_leads"],
        last_turn=row["last_turn"],
        webhook_disabled=row["disabled"],
    )


def pools_of(rows: list[dict[str, Any]], members: list[dict[str, Any]]) -> list[Pool]:
    """Pools as the configuration query returns them, with their members' weighted-
    round-robin state."""
    by_pool: dict[str, list[dict[str, Any]]] = {}
    for member in members:
        by_pool.setdefault(member["pool_id"], []).append(member)
    return [
        Pool(
            pool_id=uuid.UUID(row["id"]),
            name=row["name"],
            strategy=Strategy(row["strategy"]),
            express=row["express"],
            members=tuple(uuid.UUID(m["rep_id"]) for m in by_pool.get(row["id"], ())),
            current={
                uuid.UUID(m["rep_id"]): float(m["wrr_current"]) for m in by_pool.get(row["id"], ())
            },
        )
        for row in rows
    ]
