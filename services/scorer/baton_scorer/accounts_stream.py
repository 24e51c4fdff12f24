"""The scorer's I/O around accounts (:mod:`baton_scorer.accounts`): both sides of the
internal ``<group>-accounts`` topic, keyed by account id.

* :class:`AccountFeed` — the lead side, kept by :class:`~baton_scorer.stream.ScorerShell`.
  For the leads a batch (or a timer) changed, it names each lead's account
  (:func:`baton_shared.accounts.account_of` on its traits and email) and builds the
  updates to send: the lead's new member record, and ``left`` for the account it was in
  before, if another. Each lead's account and update number (``seq``) are saved with its
  state (``"account"`` in the ``leads`` table), so a batch processed again after a crash
  sends the same updates again. The shell produces them with the batch's transitions,
  and both are acknowledged before the state is saved.
* :class:`AccountRollup` — the account side, run by the ``roll_up_accounts`` agent: a batch
  of updates is applied to the ``accounts`` table (co-partitioned with the topic); the
  account transitions are produced to ``accounts.transitions`` and acknowledged, then
  the accounts are written to the table's changelog and acknowledged, then the agent acks
  the batch. Replayed updates change nothing (a member keeps its newest ``seq``), and a
  re-emitted transition carries the same id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from baton_scorer import accounts
from baton_scorer.local_store import changelog_partitions, evict, keyed, write_through
from baton_scorer.rules import Rules
from baton_shared.accounts import account_of
from baton_shared.clock import utcnow
from baton_shared.logs import get_logger
from baton_shared.producer import partition_for, send_batched
from baton_shared.schemas import AccountTransition

log = get_logger(__name__)


class AccountFeed:
    """Which account each cached lead is in, and the updates its changes send."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.known: dict[str, tuple[str | None, int]] = {}  # lead id -> (account, seq)

    def clear(self) -> None:
        self.known.clear()

    def loaded(self, lead_id: str, stored: Mapping[str, Any]) -> None:
        """A lead's state read from the table: remember the account it was saved with."""
        saved = stored.get("account")
        if isinstance(saved, dict):
            self.known[lead_id] = (saved.get("id"), int(saved.get("seq", 0)))

    def stored(self, lead_id: str) -> dict[str, Any] | None:
        """What to save with the lead's state (None: it never had an account)."""
        known = self.known.get(lead_id)
        return None if known is None else {"id": known[0], "seq": known[1]}

    def updates(
        self, lead_ids: Iterable[str], states: Mapping[str, Any], rules: Rules
    ) -> list[tuple[bytes, bytes]]:
        """(key, value) records for the accounts of ``lead_ids``, whose states changed."""
        if rules.accounts is None or not self.topic:
            return []
        out: list[tuple[bytes, bytes]] = []
        known = self.known
        for lead_id in lead_ids:
            state = states[lead_id]
            account = account_of(state.traits, state.email)
            before, seq = known.get(lead_id, (None, 0))
            if account is None and before is None:
                continue
            seq += 1
            known[lead_id] = (account, seq)
            if before is not None and before != account:
                out.append((before.encode(), accounts.left_update(lead_id, before, seq)))
            if account is not None:
                update = accounts.member_update(lead_id, account, seq, state)
                out.append((account.encode(), update))
        return out

    async def send(
        self, producer: Any, updates: list[tuple[bytes, bytes]]
    ) -> list[asyncio.Future[Any]]:
        """Queue ``updates`` on ``producer`` (faust's aiokafka producer) as one record batch
        per partition, each in the partition the default partitioner gives its account
        id (the roll-up's table partition); the futures resolve once Kafka has them."""
        if not updates:
            return []
        return await send_keyed(producer, self.topic, updates)


class AccountRollup:
    """Applies batches of account updates to the ``accounts`` table."""

    def __init__(
        self, app: Any, table: Any, transitions_topic: str, cache_members: int = 50_000
    ) -> None:
        self.app = app
        self.table = table  # faust table: account id -> AccountState bytes
        self.transitions_topic = transitions_topic
        self.cache: dict[str, accounts.AccountState] = {}  # over the table, like the leads'
        # The most recently saved accounts stay between batches, up to this many members.
        self.cache_members = cache_members

    def reset(self) -> None:
        """After a rebalance the table is the truth again."""
        self.cache.clear()

    async def apply_batch(self, values: list[tuple[bytes | None, bytes]], rules: Rules) -> int:
        """Apply (key, value) updates; the number of malformed ones skipped."""
        by_account: dict[str, list[accounts.Update]] = {}
        malformed = 0
        for key, value in values:
            try:
                update = accounts.decode_update(value)
            except (ValueError, TypeError, KeyError):
                malformed += 1
                continue
            if key:
                by_account.setdefault(key.decode(), []).append(update)
        if malformed:
            # Only the scorer writes this topic: a malformed record is a bug, not input.
            log.error("account_updates_malformed", count=malformed)
        changed: dict[str, accounts.AccountState] = {}
        transitions: list[AccountTransition] = []
        cache = self.cache
        for account_id, updates in by_account.items():
            state = cache.get(account_id)
            if state is None:
                stored = self.table.get(account_id.encode())
                state = cache[account_id] = accounts.AccountState.from_bytes(stored)
            transitions += accounts.apply_decoded(account_id, state, updates, rules)
            changed[account_id] = state
        await self.publish(transitions)
        await self.save(changed)
        for account_id in changed:
            cache[account_id] = cache.pop(account_id)  # most recently saved last
        evict(cache, self.cache_members, weight=members)
        return malformed

    async def publish(self, transitions: list[AccountTransition]) -> None:
        if not transitions:
            return
        emitted_at = utcnow()
        futures = []
        for t in transitions:
            value = t.model_copy(update={"emitted_at": emitted_at}).to_bytes()
            futures.append(
                await self.app.producer.send(
                    self.transitions_topic, t.account_id.encode(), value, None, None, None
                )
            )
            log.info(
                "account_transition",
                to_stage=t.to_stage.value,
                leads=len(t.leads),
                transition_id=t.transition_id,
                rules_version=t.rules_version,
            )
        await asyncio.gather(*futures)

    async def save(self, changed: dict[str, accounts.AccountState]) -> None:
        """Write the accounts to the table and its changelog, and wait for Kafka."""
        if not changed:
            return
        producer = self.app.producer._ensure_producer()  # the aiokafka producer faust runs
        records = [(a.encode(), state.to_bytes()) for a, state in changed.items()]
        partitions = await changelog_partitions(producer, self.table)
        await write_through(producer, self.table, keyed(records, partitions))


def members(state: accounts.AccountState) -> int:
    """What an account weighs in the cache: its member leads (at least one)."""
    return max(1, len(state.members))


async def send_keyed(
    producer: Any, topic: str, records: list[tuple[bytes, bytes]]
) -> list[asyncio.Future[Any]]:
    """Queue (key, value) records on ``producer`` (faust's aiokafka producer) as one
    record batch per partition, each in the partition the default partitioner gives its
    key (murmur2, cached per key: aiokafka's is pure Python)."""
    await producer.client._wait_on_metadata(topic)
    partitions = sorted(producer.client.cluster.partitions_for_topic(topic))
    batch = [(partition_for(key, partitions), key, value) for key, value in records]
    return await send_batched(producer, topic, batch)
