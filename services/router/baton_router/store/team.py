"""The team as routing sees it, read under the routing lock in one statement.

``load_team`` takes ``ROUTING_LOCK`` (and ``OUTBOX_LOCK`` with it when the transaction
will lease outbox rows), then reads reps, pools, members, enabled rules, the owners of
the leads' domains and fresh round-robin turn numbers in one round trip. The result is a
:class:`Team` of plain routing inputs that a batch updates in memory as it decides.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from baton_router.availability import Calendar, parse_working_hours
from baton_router.routing import Condition, Decision, Pool, RepState, Rule
from baton_router.store.locks import OUTBOX_LOCK, ROUTING_LOCK
from baton_router.strategies import Strategy

TEAM_QUERY = text(
    """
    SELECT
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
       FROM router.routing_rules WHERE enabled),
      (SELECT json_object_agg(domain, rep_id) FROM router.accounts
       WHERE domain = ANY(CAST(:domains AS text[]))),
      (SELECT array_agg(nextval('router.assignment_turn')) FROM generate_series(1, :n))
    """
)


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


async def load_team(
    session: AsyncSession,
    outbox_lock: bool = False,
    turns: int = 0,
    domains: set[str] | None = None,
) -> Team:
    """Lock, then read the team and draw ``turns`` turn numbers, in one statement."""
    if outbox_lock:
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:k), pg_advisory_xact_lock(:o)"),
            {"k": ROUTING_LOCK, "o": OUTBOX_LOCK},
        )
    else:
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ROUTING_LOCK})
    row = (await session.execute(TEAM_QUERY, {"n": turns, "domains": sorted(domains or ())})).one()
    reps, pools, members, rules, accounts, drawn = (
        orjson.loads(v) if isinstance(v, str | bytes) else v for v in row
    )
    return Team(
        reps={uuid.UUID(r["id"]): rep_state_of(r) for r in reps},
        targets={
            uuid.UUID(r["id"]): None if r["disabled"] else (r["url"], r["secret"]) for r in reps
        },
        pools=[pool_of(p, members) for p in pools],
        rules=[
            Rule(
                uuid.UUID(r["id"]),
                uuid.UUID(r["pool_id"]),
                tuple(Condition(**c) for c in r["conditions"]),
            )
            for r in rules
        ],
        accounts={domain: uuid.UUID(rep_id) for domain, rep_id in (accounts or {}).items()},
        slack_urls={uuid.UUID(r["id"]): r["slack"] for r in (*reps, *pools) if r["slack"]},
        turns=sorted(drawn or []),
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


def pool_of(row: dict[str, Any], members: list[dict[str, Any]]) -> Pool:
    """A pool as the team query returns it, with its members' weighted-round-robin state."""
    mine = [m for m in members if m["pool_id"] == row["id"]]
    return Pool(
        pool_id=uuid.UUID(row["id"]),
        name=row["name"],
        strategy=Strategy(row["strategy"]),
        express=row["express"],
        members=tuple(uuid.UUID(m["rep_id"]) for m in mine),
        current={uuid.UUID(m["rep_id"]): float(m["wrr_current"]) for m in mine},
    )
