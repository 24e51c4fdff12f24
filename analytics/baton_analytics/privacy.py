"""Opening sealed records for ``baton`` in privacy mode.

With ``BATON_PRIVACY_KEY`` set, the personal fields of ``leads.events`` (and of its
express-lane copies on ``leads.express``), of ``leads.transitions`` and of their records
in the DLQs travel sealed with their lead's data key (:mod:`baton_shared.privacy`).
``baton`` fetches a batch's keys from the database (``DATABASE_URL``) in one round trip,
never creating one, and opens the records before anything reads them. An erased lead
has no key any more: its records keep their pseudonymous ids and carry no personal data
(those fields empty; null in an export). Without the key setting, records are read as
they are.

An export puts the clear user, anonymous and previous ids back too; a replay keeps them
pseudonymous, as the live scorer links and merges leads by them, and opens only what it
scores (traits, email, properties, page).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import orjson

from baton_analytics.source import Fetched
from baton_shared.privacy import (
    KeyStore,
    PrivacySettings,
    SealError,
    open_event,
    open_transition,
    seal_transition,
    sealed_subject,
)
from baton_shared.schemas import Transition
from baton_shared.settings import DatabaseSettings
from baton_shared.topics import Topics, dlq

DEFAULT_DATABASE_URL = DatabaseSettings.model_fields["database_url"].default
Open = Callable[[dict[str, Any], bytes | None], dict[str, Any]]


class Opener:
    """Opens the sealed records of a deployment's topics with its :class:`KeyStore`."""

    def __init__(self, keys: KeyStore, topics: Topics, *, clear_ids: bool) -> None:
        self.keys = keys
        event: Open = partial(open_event, clear_ids=clear_ids)
        self.openers: dict[str, Open] = {
            topics.events: event,
            topics.express: event,  # copies of express-lane events
            topics.transitions: open_transition,
        }
        self.in_dead_letters = {dlq(name): how for name, how in self.openers.items()}

    async def open(self, batch: list[Fetched]) -> list[Fetched]:
        """``batch`` with every sealed record opened (other records as they are)."""
        sealed: dict[int, _Sealed] = {}
        for i, r in enumerate(batch):
            found = self._sealed(r)
            if found is not None:
                sealed[i] = found
        if not sealed:
            return batch
        keys = await self.keys.keys(sorted({s.subject for s in sealed.values()}), create=False)
        out = list(batch)
        for i, s in sealed.items():
            out[i] = batch[i]._replace(value=s.opened(keys.get(s.subject)))
        return out

    def _sealed(self, r: Fetched) -> _Sealed | None:
        how = self.openers.get(r.topic)
        if how is not None:
            return _Sealed.of(_object(r.value), how)
        how = self.in_dead_letters.get(r.topic)
        if how is None:
            return None
        letter = _object(r.value)
        value = letter.get("value")
        if not isinstance(value, str):
            return None
        return _Sealed.of(_object(value.encode()), how, letter)

    async def seal(self, transitions: list[Transition]) -> list[Transition]:
        """``transitions`` (a replay's) sealed as the scorer seals them, for a topic;
        an erased lead's have nothing to seal."""
        keys = await self.keys.keys(sorted({t.lead_id for t in transitions}), create=False)
        out = []
        for t in transitions:
            key = keys.get(t.lead_id)
            if key is None:
                t = t.model_copy(update={"email": None, "traits": {}})
            else:
                record = seal_transition(t.model_dump(mode="json", by_alias=True), key)
                t = Transition.model_validate(record)
            out.append(t)
        return out


class _Sealed:
    """One sealed record (or the record inside a dead letter) and how to open it."""

    def __init__(
        self, record: dict[str, Any], subject: str, how: Open, letter: dict[str, Any] | None
    ) -> None:
        self.record, self.subject, self.how, self.letter = record, subject, how, letter

    @classmethod
    def of(
        cls, record: dict[str, Any], how: Open, letter: dict[str, Any] | None = None
    ) -> _Sealed | None:
        token = record.get("sealed")
        if not isinstance(token, str):
            return None
        try:
            return cls(record, sealed_subject(token), how, letter)
        except SealError:
            return None  # not a token: read as it is (the model decides what is valid)

    def opened(self, key: bytes | None) -> bytes:
        opened = orjson.dumps(self.how(self.record, key))
        if self.letter is None:
            return opened
        return orjson.dumps({**self.letter, "value": opened.decode()})


def _object(raw: bytes | None) -> dict[str, Any]:
    try:
        value = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


@asynccontextmanager
async def opener(
    settings: PrivacySettings | None, topics: Topics, *, clear_ids: bool = False
) -> AsyncIterator[Opener | None]:
    """An :class:`Opener` when privacy mode is on (``BATON_PRIVACY_KEY``), else None."""
    if settings is None or settings.privacy_key is None:
        yield None
        return
    url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    keys = await KeyStore.open(settings, database_url=url)  # type: ignore[arg-type]
    try:
        yield Opener(keys, topics, clear_ids=clear_ids)
    finally:
        await keys.close()
