"""What the router and the SLA monitor share to carry out an erasure the scorer resolved
(``LeadErasure`` with stage ``resolved`` on ``leads.erasures``): the records they act
on, and the id a lead's rows are filed under once they are kept only for counts.

A row kept for an aggregate (an assignment, a closed SLA clock, a reporting journey)
loses its lead id: it becomes :func:`erased_id`, derived one way from the erasure and
the lead, so the kept rows of one lead still group together, alike in every service,
while their id is neither the person's id nor its pseudonym.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiokafka.structs import ConsumerRecord

from baton_shared.ids import stable_id
from baton_shared.logs import get_logger
from baton_shared.privacy.keystore import KeyStore, KeyStoreUnavailable
from baton_shared.privacy.settings import PrivacyKeys, derive_keys
from baton_shared.schemas import LeadErasure, decode

log = get_logger(__name__)

ERASED_PREFIX = "erased_"
RESOLVED = "resolved"


def erased_id(erasure_id: str, lead_id: str) -> str:
    """The id a lead's kept rows carry after erasure ``erasure_id``."""
    return ERASED_PREFIX + stable_id("erased", erasure_id, lead_id)[:24]


def erased_ids(erasure: LeadErasure) -> dict[str, str]:
    """Each lead id of a resolved erasure, and the id its kept rows take."""
    return {lead: erased_id(erasure.erasure_id, lead) for lead in erasure.lead_ids}


def decode_resolved(record: ConsumerRecord) -> LeadErasure | None:
    """A resolved erasure (anything undecodable is poison, to the DLQ); a ``requested``
    one is the scorer's business and decodes to None."""
    erasure = decode(LeadErasure, record.value)
    if erasure.stage != RESOLVED:
        return None
    if any(len(lead) > 256 for lead in erasure.lead_ids):
        raise ValueError("a lead id over 256 characters")
    return erasure


async def carry_out(
    erasures: list[LeadErasure],
    keys: KeyStore,
    step: str,
    erase: Callable[[dict[str, str]], Awaitable[Any]],
) -> None:
    """For each resolved erasure: ``erase`` the rows of its leads (lead id → erased id;
    it returns a dataclass of counts), then finish the service's ``step`` of it."""
    for erasure in erasures:
        done = await erase(erased_ids(erasure))
        try:
            await keys.finish_step(erasure.erasure_id, step)
        except KeyStoreUnavailable as exc:  # an outage: retried until it ends, never parked
            raise ConnectionError(str(exc)) from exc
        log.info(
            "erasure_applied",
            step=step,
            erasure_id=erasure.erasure_id,
            leads=len(erasure.lead_ids),
            **asdict(done),
        )


@dataclass(frozen=True)
class _RecordOnly:
    """KeyStore settings without privacy mode: no data key is ever made or read."""

    database_url: str
    privacy_keys: PrivacyKeys
    privacy_key_cache_seconds: float = 0.0


async def open_keys(settings: Any) -> KeyStore:
    """The store of data keys and erasure records for a service with these settings.
    With privacy mode off nothing is sealed and there are no keys to destroy, yet
    erasures are recorded and followed all the same: the store is opened with a
    throwaway wrap key that wraps nothing."""
    if settings.privacy_keys is not None:
        return await KeyStore.open(settings)
    throwaway = derive_keys(secrets.token_hex(16))
    return await KeyStore.open(_RecordOnly(settings.database_url, throwaway))
