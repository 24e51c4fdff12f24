"""Privacy mode at the scorer's boundary: sealed records opened on the way in, personal
data sealed on the way out and at rest (crypto-shredding: ``docs/security.md``).

The scoring step (:mod:`baton_scorer.step`) and both cores see clear records; the worker
(:mod:`baton_scorer.stream`) calls this around them only when ``BATON_PRIVACY_KEY`` is
set, so the path without it is unchanged:

* in: a batch's sealed events are opened with one key lookup for the batch's subjects;
  their ids stay pseudonyms, their personal fields come back (an erased subject's stay
  empty: the event still scores on its behavioural fields). The scorer's own merge
  records on the stitched topic travel *wrapped* (sealed whole with the key of the lead
  they are keyed by) and are unwrapped here.
* out: a transition's email and traits are sealed with its lead's key; a lead's state
  keeps its traits, email and merge bookkeeping (the state it shipped, the records it
  holds) sealed, and in clear the pseudonyms of every subject linked to it — what an
  erasure destroys (:mod:`baton_scorer.erasure`). Absorb records carry those subjects
  to the surviving lead.

Anonymous events held in the ``aliases`` table, records sent to be stitched and dead
letters are never opened: they stay as they were received, sealed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from copy import copy
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from baton_scorer import step
from baton_scorer.handoff import PREFIX
from baton_scorer.step import Scored, Source
from baton_shared.logs import get_logger
from baton_shared.privacy import (
    KeyStore,
    KeyStoreUnavailable,
    is_pseudonym,
    open_event,
    pseudonym_of_identity,
    seal,
    seal_transition,
    sealed_subject,
    unseal,
)
from baton_shared.schemas import Transition

log = get_logger(__name__)
T = TypeVar("T")

LINKED = ("user_id", "anonymous_id", "previous_id", "email_id")  # subjects an event links
SECRET_LINK_PARTS = {"shipped": None, "held": [], "released": []}  # of a stored Link
MAX_SUBJECTS = 1000  # subjects remembered per lead, the oldest dropped past it
RETRY_FIRST, RETRY_MAX = 0.5, 10.0  # seconds between tries while the key store is down
MAX_CACHED = 100_000  # leads whose subjects are cached between batches
INPUT_VALUE = re.compile(r"input_value=.*?(?=, input_type=|\]$)", re.MULTILINE)


@dataclass(slots=True)
class Opened:
    """A batch as the step gets it: ``index[i]`` is the position in the batch of
    ``records[i]``; ``failed`` the (position, error) of records that cannot be opened."""

    records: list[tuple[Source, bytes]]
    index: list[int]
    failed: list[tuple[int, str]] = field(default_factory=list)


def privacy_mode(settings: Any, leads: Any) -> Privacy | None:
    """The worker's :class:`Privacy` when ``BATON_PRIVACY_KEY`` is set, else None."""
    keys = settings.privacy_keys
    if keys is None:
        return None
    return Privacy(Keys(settings), keys.id_key, leads)


class Keys:
    """The worker's :class:`~baton_shared.privacy.KeyStore`, opened on first use (faust
    builds the app before its event loop runs). While PostgreSQL is unreachable the
    stream waits and tries again (as it does for Kafka); a lookup answers 503 instead."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.store: KeyStore | None = None
        self.opening: asyncio.Lock | None = None

    async def get(self) -> KeyStore:
        if self.store is None:
            self.opening = self.opening or asyncio.Lock()
            async with self.opening:
                if self.store is None:
                    self.store = await KeyStore.open(self.settings)
        return self.store

    async def call(self, what: Callable[[KeyStore], Awaitable[T]]) -> T:
        """``what(store)``, tried again with backoff while the store is unreachable."""
        delay = RETRY_FIRST
        while True:
            try:
                return await what(await self.get())
            except KeyStoreUnavailable:
                log.warning("privacy_key_store_unavailable", retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(2 * delay, RETRY_MAX)

    async def keys(self, subjects: Iterable[str], *, create: bool) -> dict[str, bytes]:
        wanted = list(subjects)
        return await self.call(lambda store: store.keys(wanted, create=create))


class Privacy:
    """One worker's privacy mode: its key store and what it remembers between batches."""

    def __init__(self, keystore: Keys, id_key: bytes, stored: Any) -> None:
        self.keystore = keystore
        self.id_key = id_key
        self.stored = stored  # the ``leads`` table: a lead's subjects when not cached
        self.keys: dict[str, bytes] = {}  # the keys fetched for the batch in progress
        self.fetched: set[str] = set()  # ... and the subjects asked for (absent: erased)
        self.subjects: dict[str, dict[str, None]] = {}
        self.changed: set[str] = set()  # leads whose subjects grew since the last take
        self.carried: dict[str, list[str]] = {}  # absorbed lead -> subjects its absorb carried

    def reset(self) -> None:
        self.subjects.clear()
        self.changed.clear()
        self.carried.clear()

    # -- keys ---------------------------------------------------------------------------

    async def fetch(self, subjects: Iterable[str]) -> None:
        """Fetch the existing keys of ``subjects`` (none is created) for what follows."""
        wanted = sorted(set(subjects))
        self.keys = await self.keystore.keys(wanted, create=False) if wanted else {}
        self.fetched = set(wanted)

    def key(self, subject: str) -> bytes | None:
        if subject not in self.fetched:
            raise ValueError("the data key of a sealed record was not fetched")
        return self.keys.get(subject)

    # -- in ------------------------------------------------------------------------------

    async def score_batch(
        self, shell: Any, events: Sequence[Any], records: Sequence[Any]
    ) -> Scored:
        """:func:`baton_scorer.step.score_batch` of the worker's batch, its sealed records
        opened first; its indexes point into ``events``, its merge records are sealed."""
        keys = [ev.message.key.decode() if ev.message.key else "" for ev in events]
        opened = await self.open_batch(records, keys)
        scored = step.score_batch(
            opened.records, shell.load_state, shell.source.rules, shell.identity
        )
        index = opened.index
        scored.dead_letters = [
            *opened.failed,
            *((index[i], scrub(error)) for i, error in scored.dead_letters),
        ]
        scored.to_stitch = [(index[i], anonymous) for i, anonymous in scored.to_stitch]
        for lead_id in self.take_changed():  # saved with the subjects they now link
            shell.load_state(lead_id)
            scored.touched[lead_id] = None
        if scored.handoffs:
            scored.handoffs = await self.wrap(scored.handoffs)
        return scored

    async def open_batch(
        self, records: Sequence[tuple[Source, bytes]], keys: Sequence[str]
    ) -> Opened:
        """The batch with its sealed events opened and wrapped records unwrapped; the
        states of the lead ids ``keys`` (its records' keys) can be opened after it."""
        parsed: dict[int, dict[str, Any]] = {}
        subjects = set(keys)
        for i, (source, value) in enumerate(records):
            if source is Source.ACTIVITY or value.startswith(PREFIX):
                continue
            try:
                record = orjson.loads(value)
                if source is Source.EVENTS and record.get("anonymous_id") is not None:
                    continue  # to be stitched as received; opened when it comes back
                token = record.get("sealed") or record.get("wrapped")
                if isinstance(token, str):
                    subjects.add(sealed_subject(token))
            except (ValueError, AttributeError):
                continue  # not a record: the step dead-letters it as received
            if isinstance(record.get("lead_id"), str):
                subjects.add(record["lead_id"])
            parsed[i] = record
        await self.fetch(subjects)
        out = Opened([], [])
        for i, (source, value) in enumerate(records):
            record = parsed.get(i)
            if record is not None:
                try:
                    value = self._open(record, keys[i])
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    out.failed.append((i, f"{type(exc).__name__}: {exc}"))
                    continue
            out.records.append((source, value))
            out.index.append(i)
        return out

    def _open(self, record: dict[str, Any], key: str) -> bytes:
        if "wrapped" in record:
            return self._unwrap(record, key)
        lead_id = record.get("lead_id") or key
        token = record.get("sealed")
        if isinstance(token, str):
            record = open_event(record, self.key(sealed_subject(token)))  # ids stay pseudonyms
        self.record(lead_id, linked(record, token))
        return orjson.dumps(record)

    def _unwrap(self, record: dict[str, Any], lead_id: str) -> bytes:
        token = record["wrapped"]
        inner = unseal(self.key(sealed_subject(token)), token)
        if inner is None:
            raise ValueError("a merge record of an erased lead")
        body = inner["handoff"]
        carried = record.get("subjects") or []
        if body["kind"] == "absorb":
            self.carried[body["from"]] = carried
            self.record(lead_id, [body["from"], *carried])
        elif body["kind"] == "event":
            event = orjson.loads(body["event"])
            self.record(lead_id, [body["from"], *linked(event, event.get("sealed"))])
        return orjson.dumps(inner)

    # -- subjects ------------------------------------------------------------------------

    def subjects_of(self, lead_id: str) -> dict[str, None]:
        have = self.subjects.get(lead_id)
        if have is None:
            stored = self.stored.get(lead_id.encode())
            part = orjson.loads(stored).get("privacy") if stored else None
            have = self._cache(lead_id, (part or {}).get("subjects", ()))
        return have

    def _cache(self, lead_id: str, subjects: Iterable[str]) -> dict[str, None]:
        if len(self.subjects) >= MAX_CACHED:
            self.subjects = {k: self.subjects[k] for k in self.changed if k in self.subjects}
        have = self.subjects[lead_id] = dict.fromkeys(subjects)
        return have

    def record(self, lead_id: str, subjects: Iterable[str | None]) -> None:
        """Remember ``subjects`` as linked to ``lead_id`` (its state is saved with them)."""
        have = None
        for subject in subjects:
            if not subject or subject == lead_id:
                continue
            if have is None:
                have = self.subjects_of(lead_id)
            if subject not in have:
                have[subject] = None
                self.changed.add(lead_id)
        if have is not None and len(have) > MAX_SUBJECTS:
            for old in list(have)[: len(have) - MAX_SUBJECTS]:
                del have[old]

    def forget(self, lead_id: str) -> None:
        self.subjects.pop(lead_id, None)
        self.changed.discard(lead_id)

    def take_changed(self) -> list[str]:
        """The leads whose subjects grew: their states must be saved."""
        changed, self.changed = sorted(self.changed), set()
        return changed

    # -- states at rest ------------------------------------------------------------------

    def open_stored(self, lead_id: str, raw: dict[str, Any]) -> dict[str, Any]:
        """A stored state (:meth:`seal_stored`) with its sealed parts back (in place)."""
        part = raw.pop("privacy", None)
        if part is None:
            return raw
        if lead_id not in self.subjects:  # the cache has what this batch recorded
            self._cache(lead_id, part.get("subjects", ()))
        return open_parts(raw, part, self.key(lead_id))

    async def seal_stored(self, stored: dict[str, dict[str, Any]]) -> None:
        """Seal each lead's stored state (lead id -> ``to_dict`` form, in place)."""
        keys = await self.keystore.keys(sorted(stored), create=True)
        for lead_id, raw in stored.items():
            secret = {"traits": raw["traits"], "email": raw["email"]}
            raw["traits"], raw["email"] = {}, None
            identity = raw.get("identity")
            if identity is not None:
                for name, empty in SECRET_LINK_PARTS.items():
                    secret[name] = identity[name]
                    identity[name] = empty
            raw["privacy"] = {
                "sealed": seal(keys[lead_id], lead_id, secret),
                "subjects": list(self.subjects_of(lead_id)),
            }

    # -- out -----------------------------------------------------------------------------

    async def seal_transitions(self, transitions: Sequence[Transition]) -> list[bytes]:
        """Each transition's bytes with email and traits sealed with its lead's key."""
        keys = await self.keystore.keys(sorted({t.lead_id for t in transitions}), create=True)
        return [
            orjson.dumps(seal_transition(t.model_dump(mode="json", by_alias=True), keys[t.lead_id]))
            for t in transitions
        ]

    async def wrap(self, handoffs: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        """The merge records, each sealed whole with the key of the lead it is keyed by;
        an absorb carries the subjects linked to the lead it hands over."""
        keys = await self.keystore.keys(sorted({k for k, _ in handoffs}), create=True)
        out = []
        for key, value in handoffs:
            inner = orjson.loads(value)
            body = inner["handoff"]
            wrapped: dict[str, Any] = {"wrapped": seal(keys[key], key, inner)}
            if body["kind"] == "absorb":
                absorbed = body["from"]
                carried = self.carried.get(absorbed, ())
                wrapped["subjects"] = list(dict.fromkeys([*self.subjects_of(absorbed), *carried]))
            out.append((key, orjson.dumps(wrapped)))
        self.carried.clear()
        return out

    # -- the lead lookup -----------------------------------------------------------------

    def lookup_ids(self, key: str) -> str:
        """The pseudonym the lookup's ``key`` names a lead by (a pseudonym as given)."""
        if is_pseudonym(key):
            return key
        return pseudonym_of_identity(self.id_key, key)

    async def open_for_lookup(self, lead_id: str, raw: dict[str, Any]) -> dict[str, Any]:
        """A stored state opened for the lookup (its own key lookup, not the batch's)."""
        part = raw.pop("privacy", None)
        if part is None:
            return raw
        keys = await (await self.keystore.get()).keys([lead_id], create=False)
        return open_parts(raw, part, keys.get(lead_id))


def open_parts(raw: dict[str, Any], part: dict[str, Any], key: bytes | None) -> dict[str, Any]:
    """``raw`` with the parts :meth:`Privacy.seal_stored` sealed put back; with no key
    (erased) traits and email stay empty."""
    secret = unseal(key, part["sealed"]) or {}
    raw["traits"] = secret.get("traits") or {}
    raw["email"] = secret.get("email")
    identity = raw.get("identity")
    if identity is not None:
        for name, empty in SECRET_LINK_PARTS.items():
            identity[name] = secret.get(name, copy(empty))
    return raw


def linked(record: dict[str, Any], token: Any) -> list[str | None]:
    """The subjects an event links to the lead it is scored for."""
    out: list[str | None] = [record.get(name) for name in LINKED]
    if isinstance(token, str):
        out.append(sealed_subject(token))
    return out


def scrub(error: str) -> str:
    """An error text without the values pydantic quotes (they may be personal data)."""
    return INPUT_VALUE.sub("input_value=…", error)
