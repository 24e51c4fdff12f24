"""The scorer worker's faust app: topics, tables, agents and timers, wired together.

* ``score`` reads ``leads.events``, ``leads.activity`` and the internal
  ``baton-scorer-stitched`` topic in batches (``noack_take``) and hands each batch to
  :meth:`ScorerShell.score_batch <baton_scorer.stream.ScorerShell.score_batch>`: the
  scoring step (:mod:`baton_scorer.step`) against the changelogged ``leads`` table,
  then transitions, state and acks in that order, in chunks of bounded time.
* ``score_express`` reads ``leads.express`` (ingest's copies of express-lane events)
  record by record, and scores each ahead of the next bulk chunk
  (:mod:`baton_scorer.lanes`).
* An anonymous event goes by the internal ``baton-scorer-identity`` topic (keyed by
  anonymous id) to ``stitch_identities``, which keeps the ``aliases`` table and sends
  the events an identify releases back through ``baton-scorer-stitched``.
* Merges of two known leads (an alias; an identify carrying an email) travel on
  ``baton-scorer-stitched`` too, keyed by the lead each step changes
  (:mod:`baton_scorer.handoff`).
* ``fire_timers`` recycles SQL leads whose cold timer is due, without a new event;
  ``reload_rules`` and ``follow_rules`` swap in changed rules
  (:mod:`baton_scorer.rules_source` says which wins). Each batch takes the rules in
  use when it starts, so every transition names the version that decided it.
* Leads roll up to accounts: the shell sends each changed lead's account update on the
  internal ``baton-scorer-accounts`` topic (keyed by account id) to ``roll_up_accounts``,
  which keeps the ``accounts`` table and emits ``accounts.transitions``
  (:mod:`baton_scorer.accounts_stream`).
* ``leads.erasures`` requests are resolved on the worker owning their key
  (:mod:`baton_scorer.erasure`); with ``BATON_PRIVACY_KEY`` set, sealed records are
  opened and personal data sealed at the shell's boundary (:mod:`baton_scorer.privacy`).
* The web server answers ``/healthz`` (= ``/readyz``), ``/livez``, ``/metrics``,
  ``/openapi.json``, ``GET /v1/leads/{key}`` and ``GET /v1/accounts/{account_id}``
  (:mod:`baton_scorer.web`, from the tables). Faust supervises the agents and timers
  itself (a crashed agent is restarted by its supervisor).
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from aiohttp import web
from faust.exceptions import ConsumerNotStarted

from baton_scorer import core, erasure
from baton_scorer.accounts_stream import AccountRollup
from baton_scorer.config import ScorerSettings
from baton_scorer.faust_consumer import BatonConsumer
from baton_scorer.lanes import Lanes
from baton_scorer.local_store import CHANGELOG_CONFIG, claim_slot, is_persistent, table_options
from baton_scorer.openapi import Health
from baton_scorer.privacy import privacy_mode
from baton_scorer.rules_source import RulesSource
from baton_scorer.rules_topic import RulesFollower
from baton_scorer.stream import ScorerShell
from baton_scorer.web import LeadLookup, install
from baton_shared.auth_limits import failed_auths
from baton_shared.kafka_connection import faust_credentials
from baton_shared.metrics import exposition

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def faust_broker_url(bootstrap_servers: str) -> str:
    return ";".join(f"kafka://{hostport.strip()}" for hostport in bootstrap_servers.split(","))


def internal_topics(settings: ScorerSettings) -> tuple[str, str]:
    """The repartition topics: by anonymous id, and stitched back by lead id."""
    group = settings.topics.group("baton-scorer")
    return f"{group}-identity", f"{group}-stitched"


def faust_app(settings: ScorerSettings) -> faust.App:
    """A faust app configured from ``settings``, with the direct-hand-over consumer."""
    persistent = is_persistent(settings.store)
    app = faust.App(
        settings.topics.group("baton-scorer"),
        broker=faust_broker_url(settings.kafka_bootstrap_servers),
        broker_credentials=faust_credentials(settings.kafka),
        topic_replication_factor=settings.topic_durability.replication_factor,
        store=settings.store,
        datadir=str(claim_slot(settings.data_dir) if persistent else settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=True,
        producer_acks=-1,
        producer_linger=settings.producer_linger_seconds,
        producer_max_batch_size=settings.producer_max_batch_bytes,
        stream_buffer_maxsize=settings.stream_buffer_max,
        broker_max_poll_records=settings.max_poll_records,
        broker_commit_interval=settings.commit_interval_seconds,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.heartbeat_interval_seconds,
        table_standby_replicas=settings.standby_replicas,
        web_host=settings.host,
        web_port=settings.port,
        web_bind=settings.host,
        # faust's debug pages: /table would serve any lead's state without a token,
        # /router the cluster's layout. The lookup names owners itself (web.py).
        web_router_enabled=False,
        web_tables_enabled=False,
        consumer_auto_offset_reset="earliest",
    )
    # Records reach the streams without faust's per-record race (see faust_consumer).
    app.transport.Consumer = BatonConsumer  # type: ignore[misc]
    return app


def replica_config(settings: ScorerSettings) -> dict[str, str]:
    """Topic config of what faust creates (changelogs, account updates): faust sets
    their replication factor, this their ``min.insync.replicas``."""
    return {"min.insync.replicas": str(settings.topic_durability.min_insync_replicas)}


def accounts_topic(settings: ScorerSettings) -> str:
    """The internal topic of account updates, keyed by account id."""
    return f"{settings.topics.group('baton-scorer')}-accounts"


def tables(app: faust.App, settings: ScorerSettings) -> tuple[Any, Any, Any]:
    """The ``leads`` and ``aliases`` tables, co-partitioned with the input topics, and
    ``accounts``, co-partitioned with the account updates."""
    options: dict[str, Any] = {
        "default": None,
        "partitions": settings.topic_partitions,
        # Raw bytes keys and values: a changelog record's key is the lead id exactly
        # as on the source topics, so the same partitioner puts it in the same
        # partition (a JSON-encoded key would hash elsewhere and be recovered by
        # the wrong worker). Values are orjson-encoded LeadState / Alias.
        "key_type": bytes,
        "value_type": bytes,
        # Writes land in the changelog partition of the key, so a batch may write
        # many leads after its last event.
        "use_partitioner": True,
        "extra_topic_configs": replica_config(settings) | CHANGELOG_CONFIG,
        **table_options(settings.store),
    }
    return (
        app.Table("leads", **options),
        app.Table("aliases", **options),
        app.Table("accounts", **options),
    )


def create_app(
    settings: ScorerSettings, source: RulesSource, follower: RulesFollower | None = None
) -> faust.App:
    """The worker's faust app; ``follower`` (when given) keeps ``source`` on the rules topic."""
    topics = settings.topics
    identity_name, stitched_name = internal = internal_topics(settings)
    app = faust_app(settings)
    inputs = app.topic(topics.events, topics.activity, stitched_name, **RAW)
    express_topic = app.topic(topics.express, **RAW)
    identity_topic = app.topic(identity_name, **RAW)
    leads, aliases, accounts = tables(app, settings)
    accounts_name = accounts_topic(settings)
    shell = ScorerShell(
        app, topics, internal, source, leads, aliases, accounts_name, settings.cache_leads
    )
    rollup = AccountRollup(
        app, accounts, topics.accounts_transitions, settings.cache_account_members
    )
    # Declared by the worker (internal), with the partitions of its table.
    updates = app.topic(
        accounts_name,
        internal=True,
        partitions=settings.topic_partitions,
        config=replica_config(settings),
        **RAW,
    )
    batch_max, within = settings.batch_max, settings.batch_within_seconds
    lanes = Lanes(shell, settings.batch_max_seconds)

    @app.agent(inputs)
    async def score(stream: faust.StreamT[bytes]) -> None:
        # Pipeline depth one: batch N is scored in a task while faust fills batch N+1
        # (noack_take stalls delivery while the loop body runs). Batches still run
        # strictly one after another, and each is acked only once it is durable.
        previous: asyncio.Task[None] | None = None
        async for batch in stream.noack_take(batch_max, within=within):
            if previous is not None:
                await previous
            previous = asyncio.create_task(lanes.bulk(list(batch), stream.ack))

    @app.agent(express_topic)
    async def score_express(stream: faust.StreamT[bytes]) -> None:
        # One record at a time, handed over as it arrives: no wait for a batch to fill.
        async for batch in stream.noack_take(1, within=1.0):
            await lanes.express(list(batch), stream.ack)

    @app.agent(identity_topic)
    async def stitch_identities(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.noack_take(batch_max, within=within):
            await shell.stitch_batch(list(batch))
            for ev in batch:
                await stream.ack(ev)

    @app.agent(updates)
    async def roll_up_accounts(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.noack_take(batch_max, within=within):
            await rollup.apply_batch([(ev.key, ev.value) for ev in batch], source.rules)
            for ev in batch:
                await stream.ack(ev)

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        # faust has waited for the batches in flight; a timer still saving leads
        # finishes before the partitions (and their local stores) move.
        async with shell.lock:
            shell.reset_caches()
        rollup.reset()

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: Any, **kwargs: Any) -> None:
        shell.reset_caches()
        rollup.reset()

    @app.timer(settings.timer_tick_seconds)
    async def fire_timers() -> None:
        await shell.fire_timers()

    def rules_changed() -> None:
        shell.timers_stale = True  # due times may move with the new rules

    @app.timer(settings.timer_tick_seconds)
    async def reload_rules() -> None:
        if source.poll():
            rules_changed()

    if follower is not None:

        @app.task
        async def follow_rules() -> None:
            await follower.follow(rules_changed)

    def assigned() -> bool:
        try:
            return bool(app.consumer.assignment())
        except ConsumerNotStarted:  # asked before faust has started its consumer
            return False

    def health(view: Any) -> web.Response:
        ready = app.rebalancing is False and assigned()
        body = Health(
            status="ready" if ready else "unavailable",
            checks={"kafka": ready},
            rules_version=source.rules.version,
            rules_origin=source.origin,
            core=core.KIND,
        )
        return view.json(body.model_dump(), status=200 if ready else 503)  # type: ignore[no-any-return]

    @app.page("/healthz")
    async def healthz(self: Any, request: web.Request) -> web.Response:
        return health(self)

    @app.page("/readyz")
    async def readyz(self: Any, request: web.Request) -> web.Response:
        return health(self)

    @app.page("/livez")
    async def livez(self: Any, request: web.Request) -> web.Response:
        return self.json({"status": "alive"})  # type: ignore[no-any-return]

    @app.page("/metrics")
    async def metrics_page(self: Any, request: web.Request) -> web.Response:
        body, content_type = exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    lookup = LeadLookup(
        app, leads, aliases, source, settings.admin_token, failed_auths(settings), accounts
    )
    install(app, lookup)
    shell.privacy = lookup.privacy = privacy_mode(settings, leads)
    erasure.install(app, shell, settings, replica_config(settings))
    app.scorer = shell  # type: ignore[attr-defined]
    return app
