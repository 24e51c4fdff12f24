"""Erasure of a person, the scorer's part: every subject linked to a lead resolved,
their data keys destroyed, the lead's state and aliases deleted.

A ``requested`` :class:`~baton_shared.schemas.LeadErasure` on ``leads.erasures`` is
keyed by a pseudonym the router was given; the worker owning that key takes it:

* a lead merged into another, or an anonymous id stitched to a lead, passes the request
  on to that lead (``find`` on the internal ``<group>-erasures`` topic, keyed by it,
  naming the ids it went through);
* the lead it ends at resolves it. Linked to it are: itself, the ids on the way, the
  leads merged into it (its merge link) and, in privacy mode, the subjects its state
  remembers (stitched anonymous ids, email ids: :mod:`baton_scorer.privacy`). Their keys
  are destroyed; each of them but the lead gets a ``member`` record on the internal
  topic, whose worker deletes its own state and alias; the lead's state and alias are
  deleted (tombstones on the changelogs); a ``resolved`` record names every linked id
  (the router and the SLA monitor erase their rows of them); the scorer's step of the
  erasure is finished.

Redelivery is harmless: destroying and deleting twice changes nothing, and a lead no
longer known resolves to the ids the request came with. With privacy mode off there
are no keys: states are deleted all the same and the step recorded (stitched anonymous
ids are not known then: their aliases stay until the anonymous id is erased itself).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson

from baton_scorer import metrics as m
from baton_scorer.identity import Alias
from baton_scorer.lookup import merged_into
from baton_scorer.privacy import Keys
from baton_scorer.step import RECORD_ERRORS, error_text
from baton_scorer.stream import dead_letter_of
from baton_shared.erasure_steps import open_keys
from baton_shared.logs import get_logger
from baton_shared.privacy import KeyStore
from baton_shared.schemas import LeadErasure, decode
from baton_shared.topics import dlq

log = get_logger(__name__)

STEP = "scorer"
MAX_HOPS = 16  # leads a request passes through before the one it is at resolves it


@dataclass(slots=True)
class Request:
    """One erasure at one key: from the router (``find``, nothing visited) or passed on."""

    erasure_id: str
    kind: str  # "find": resolve the lead this key ends at; "member": delete this key only
    subjects: list[str]
    requested_at: str
    path: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "erasure_id": self.erasure_id,
                "kind": self.kind,
                "subjects": self.subjects,
                "requested_at": self.requested_at,
                "path": self.path,
            }
        )


def request_of(topic: str, erasures_topic: str, value: bytes) -> Request | None:
    """The request a record carries; None for a ``resolved`` record (the scorer's own)."""
    if topic == erasures_topic:
        erasure = decode(LeadErasure, value)
        if erasure.stage != "requested":
            return None
        uuid.UUID(erasure.erasure_id)  # the erasure record's id: ValueError otherwise
        at = erasure.requested_at.isoformat()
        return Request(erasure.erasure_id, "find", list(erasure.subjects), at)
    raw = orjson.loads(value)
    if not isinstance(raw, dict) or raw.get("kind") not in ("find", "member"):
        raise ValueError("not an erasure record")
    if not isinstance(raw.get("path"), list):
        raise ValueError("not an erasure record")
    return Request(
        str(raw["erasure_id"]),
        raw["kind"],
        list(raw.get("subjects", ())),
        str(raw["requested_at"]),
        [str(p) for p in raw["path"]],
    )


def install(app: faust.App, shell: Any, settings: Any, config: dict[str, str]) -> Eraser:
    """The agents taking ``leads.erasures`` and the internal ``<group>-erasures`` topic
    (declared by the worker, with the partitions of its tables and ``config``)."""
    name = f"{settings.topics.group('baton-scorer')}-erasures"
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
    raw |= {"key_serializer": "raw", "value_serializer": "raw"}
    internal = app.topic(
        name, internal=True, partitions=settings.topic_partitions, config=config, **raw
    )
    eraser = Eraser(shell, name, settings)
    batch_max, within = settings.batch_max, settings.batch_within_seconds

    async def take(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.noack_take(batch_max, within=within):
            await eraser.handle(list(batch))
            for ev in batch:
                await stream.ack(ev)

    app.agent(app.topic(settings.topics.erasures, **raw), name="erase_requested")(take)
    app.agent(internal, name="erase_linked")(take)
    return eraser


class Eraser:
    """Takes erasure records on the worker owning their key (module doc)."""

    def __init__(self, shell: Any, internal_topic: str, settings: Any) -> None:
        self.shell = shell
        self.internal = internal_topic
        self.erasures = shell.topics.erasures
        self.settings = settings
        self.recorder: KeyStore | None = None  # without privacy mode: erasure records only

    @property
    def keystore(self) -> Keys | None:
        privacy = self.shell.privacy
        return None if privacy is None else privacy.keystore

    async def handle(self, events: list[Any]) -> None:
        """A batch of ``leads.erasures`` or internal records, in order."""
        shell = self.shell
        async with shell.lock:
            for ev in events:
                message = ev.message
                try:
                    request = request_of(message.topic, self.erasures, ev.value)
                    key = message.key.decode() if message.key else ""
                    if not key:
                        raise ValueError("an erasure record needs a key")
                except RECORD_ERRORS as exc:
                    await self.dead_letter(ev, error_text(exc))
                    continue
                if request is not None:
                    await self.erase(key, request)

    async def erase(self, key: str, request: Request) -> None:
        stored = self.shell.leads.get(key.encode())
        raw = orjson.loads(stored) if stored else None
        if request.kind == "member":
            await self.destroy([key, *self.remembered(key, raw)])
            await self.forget(key)
            return
        visited = [*request.path, key]
        onward = merged_into(raw) if raw is not None else self.alias_lead(key)
        if onward is not None and onward not in visited and len(visited) < MAX_HOPS:
            passed = Request(
                request.erasure_id, "find", request.subjects, request.requested_at, visited
            )
            await self.send(self.internal, onward, passed.to_bytes())
            return
        linked = list(dict.fromkeys([key, *request.path, *self.remembered(key, raw)]))
        await self.destroy(linked)
        member = Request(request.erasure_id, "member", [], request.requested_at)
        sends = [
            await self.shell._send(self.internal, other.encode(), member.to_bytes())
            for other in linked[1:]
        ]
        resolved = LeadErasure(
            erasure_id=request.erasure_id,
            stage="resolved",
            subjects=request.subjects,
            lead_ids=linked,
            requested_at=request.requested_at,
        )
        sends.append(await self.shell._send(self.erasures, key.encode(), resolved.to_bytes()))
        await asyncio.gather(*sends)
        await self.forget(key)
        await self.finish(request.erasure_id)
        log.info("erasure_resolved", erasure_id=request.erasure_id, leads=len(linked))

    async def finish(self, erasure_id: str) -> None:
        """Record the scorer's step of the erasure: in privacy mode through the key store
        (tried until it answers); without it through a store of erasure records only,
        once (a scorer that cannot reach PostgreSQL then says so and scores on)."""
        keys = self.keystore
        if keys is not None:
            await keys.call(lambda store: store.finish_step(erasure_id, STEP))
            return
        try:
            if self.recorder is None:
                self.recorder = await open_keys(self.settings)
            await self.recorder.finish_step(erasure_id, STEP)
        except Exception as exc:  # best effort: scoring must go on
            log.warning(
                "erasure_step_not_recorded", erasure_id=erasure_id, error=type(exc).__name__
            )

    def remembered(self, key: str, raw: dict[str, Any] | None) -> list[str]:
        """The ids a stored lead links: the leads merged into it, and in privacy mode
        the subjects its state remembers."""
        if raw is None:
            return []
        merged = (raw.get("identity") or {}).get("merged_ids") or []
        privacy = self.shell.privacy
        subjects = list(privacy.subjects_of(key)) if privacy is not None else []
        return [*merged, *subjects]

    def alias_lead(self, key: str) -> str | None:
        """The lead an anonymous id was stitched to, if it was."""
        stored = self.shell.aliases_table.get(key.encode())
        return Alias.from_bytes(stored).lead_id if stored else None

    async def destroy(self, subjects: list[str]) -> None:
        if self.keystore is not None:
            await self.keystore.call(lambda store: store.destroy(subjects))

    async def send(self, topic: str, key: str | bytes, value: bytes) -> None:
        raw_key = key.encode() if isinstance(key, str) else key
        await (await self.shell._send(topic, raw_key, value))

    async def forget(self, key: str) -> None:
        """Delete ``key``'s lead state and alias: in the local stores, with a tombstone
        on their changelogs, and from the shell's caches."""
        shell = self.shell
        raw_key = key.encode()
        sends = []
        for table in (shell.leads, shell.aliases_table):
            try:
                del table.data[raw_key]
            except KeyError:
                pass
            changelog = table.changelog_topic.get_topic_name()
            sends.append(await shell._send(changelog, raw_key, None))
        await asyncio.gather(*sends)
        for cache in (shell.states, shell.links, shell.aliases, shell.feed.known):
            cache.pop(key, None)
        shell.identity.sent.discard(key)
        shell.timers.schedule(key, None)
        if shell.privacy is not None:
            shell.privacy.forget(key)

    async def dead_letter(self, event: Any, error: str) -> None:
        m.EVENTS.labels(outcome="dead_letter").inc()
        m.DEAD_LETTERS.inc()
        record = dead_letter_of(event, error).to_bytes()
        await self.send(dlq(self.erasures), event.message.key or b"", record)
