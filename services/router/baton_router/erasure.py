"""Erasure of a person, the router's part (the flow is in ``docs/security.md``).

* :meth:`Erasures.request` (``POST /v1/privacy/erase``): the given ids as pseudonyms
  (:func:`subjects_of`), the erasure recorded (who, when, pseudonyms only), the
  subjects' data keys destroyed at once, and a ``requested`` record on
  ``leads.erasures`` keyed by each pseudonym for the scorer to resolve.
* :meth:`Erasures.apply`: the ``resolved`` records (every lead id of the person) erase
  the router's rows (:mod:`baton_router.store.erasure`), then the router's step is done.
* :meth:`Erasures.open_transitions`: in privacy mode a transition's email and traits
  arrive sealed; they are opened here, one key lookup per batch, so routing and the
  rep's webhook see them (an erased lead's stay empty).

With privacy mode off the pseudonym of an id is the id itself and there is no key to
destroy; rows are erased all the same, and the status says the topics are not sealed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer

from baton_router.store.erasure import ErasureStore
from baton_shared.clock import utcnow
from baton_shared.erasure_steps import carry_out
from baton_shared.logs import get_logger
from baton_shared.privacy.erasures import ERASURE_STEPS, Erasure
from baton_shared.privacy.keystore import KeyStore
from baton_shared.privacy.pseudonyms import is_pseudonym, pseudonym, pseudonym_of_identity
from baton_shared.schemas import LeadErasure, Transition
from baton_shared.sealed_transitions import open_transitions

log = get_logger(__name__)

STEP = "router"
IDENTITIES = ("user_id", "email", "anonymous_id", "lead_id")


def subjects_of(ids: Mapping[str, str], id_key: bytes | None) -> list[str]:
    """The pseudonyms of the given identities (field → value), as ingest computes them;
    without an ``id_key`` (privacy mode off) each id itself, an email lower-cased."""
    out: list[str] = []
    for field in IDENTITIES:
        raw = ids.get(field)
        if raw is None:
            continue
        if id_key is None:
            subject = raw.strip().lower() if field == "email" else raw
        elif field == "lead_id" and is_pseudonym(raw):
            subject = raw
        elif field == "email":
            subject = pseudonym_of_identity(id_key, raw)
        else:
            subject = pseudonym(id_key, raw)
        if subject not in out:
            out.append(subject)
    return out


def status_of(record: Erasure, sealed: bool) -> dict[str, Any]:
    """The erasure's status as the API shows it."""
    return {
        "erasure_id": record.erasure_id,
        "requested_by": record.requested_by,
        "requested_at": record.requested_at,
        "subjects": record.subjects,
        "steps": {step: record.steps.get(step) for step in ERASURE_STEPS},
        "completed_at": record.completed_at,
        "status": "completed" if record.complete else "in_progress",
        "topics": "sealed" if sealed else "not sealed",
    }


class Erasures:
    def __init__(
        self,
        keys: KeyStore,
        store: ErasureStore,
        producer: Callable[[], AIOKafkaProducer | None],
        topic: str,
        id_key: bytes | None,
    ):
        self._keys, self._store, self._producer = keys, store, producer
        self._topic = topic
        self._id_key = id_key

    @property
    def sealed(self) -> bool:
        """Privacy mode: topics carry pseudonyms and sealed fields only."""
        return self._id_key is not None

    async def request(self, ids: Mapping[str, str], requested_by: str) -> str:
        """Record, shred and announce an erasure; its id."""
        producer = self._producer()
        if producer is None:
            raise RuntimeError("the router is starting")
        subjects = subjects_of(ids, self._id_key)
        erasure = await self._keys.record_erasure(subjects, requested_by)
        erasure_id, now = erasure.erasure_id, erasure.requested_at
        if self.sealed:
            await self._keys.destroy(subjects)
        for subject in subjects:
            record = LeadErasure(
                erasure_id=erasure_id, stage="requested", subjects=subjects, requested_at=now
            )
            await producer.send_and_wait(self._topic, record.to_bytes(), key=subject.encode())
        log.info("erasure_requested", erasure_id=erasure_id, subjects=len(subjects))
        return erasure_id

    async def status(self, erasure_id: uuid.UUID) -> dict[str, Any] | None:
        record = await self._keys.erasure(str(erasure_id))
        return None if record is None else status_of(record, self.sealed)

    async def apply(self, erasures: list[LeadErasure]) -> None:
        """Erase the rows of resolved erasures, then finish the router's step of each."""
        await carry_out(
            erasures, self._keys, STEP, lambda erased: self._store.erase(erased, utcnow())
        )

    async def open_transitions(self, transitions: list[Transition]) -> list[Transition]:
        """The batch with every sealed transition's email and traits opened (one key
        lookup for the batch; an erased lead's key is gone and they stay empty)."""
        return await open_transitions(self._keys, transitions)
