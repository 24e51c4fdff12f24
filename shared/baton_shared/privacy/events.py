"""What of a record is personal, and how it travels in privacy mode. Pure.

A ``LeadEvent`` (as a dict by wire names) keeps its ids, pseudonymised in place
(``lead_id``, ``user_id``, ``anonymous_id``, ``previous_id``; ``email_id`` is the
email's), and carries everything personal sealed in ``sealed`` under the data key of
its pseudonymous ``lead_id``: the clear ids, email, ip, user agent, traits, context,
properties and page. Those fields are empty on the wire. What stays clear: event id,
type, name, times, source, page category, campaign (UTM), group id, the duplicate mark.

A ``Transition`` seals its ``email`` and ``traits`` the same way.

:func:`open_event` and :func:`open_transition` put the sealed fields back; with the
key gone (erased) they stay empty and ``sealed`` is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from baton_shared.privacy.pseudonyms import pseudonym
from baton_shared.privacy.sealing import seal, unseal

ID_FIELDS = ("user_id", "anonymous_id", "previous_id")
# Personal fields and their value on the wire once sealed.
EVENT_PERSONAL: dict[str, Any] = {
    "email": None,
    "ip": None,
    "user_agent": None,
    "page": None,
    "traits": {},
    "context": {},
    "properties": {},
}
TRANSITION_PERSONAL: dict[str, Any] = {"email": None, "traits": {}}


def event_subject(record: Mapping[str, Any], id_key: bytes) -> str:
    """The subject a clear event is sealed under: the pseudonym of its ``lead_id``."""
    return pseudonym(id_key, record["lead_id"])


def seal_event(
    record: Mapping[str, Any], id_key: bytes, key_for: Callable[[str], bytes]
) -> dict[str, Any]:
    """The event as it travels in privacy mode (a new dict; ``record`` is left as is).
    ``key_for`` gives the data key of a subject (the pseudonymous lead id)."""
    out = dict(record)
    subject = out["lead_id"] = event_subject(record, id_key)
    personal: dict[str, Any] = {}
    for name in ID_FIELDS:
        value = record.get(name)
        if value:
            personal[name] = value
            out[name] = pseudonym(id_key, value)
    email = record.get("email")
    out["email_id"] = pseudonym(id_key, email) if email else None
    for name, empty in EVENT_PERSONAL.items():
        value = record.get(name)
        if value:
            personal[name] = value
        out[name] = empty.copy() if isinstance(empty, dict) else empty
    out["sealed"] = seal(key_for(subject), subject, personal) if personal else None
    return out


def open_event(
    record: Mapping[str, Any], key: bytes | None, *, clear_ids: bool = False
) -> dict[str, Any]:
    """The event with its personal fields back (a new dict). Ids stay pseudonyms, as
    every store is keyed by them, unless ``clear_ids`` (an export for a person).
    For an erased lead (``key`` None or not the sealing one) the fields stay empty."""
    return _open(record, key, EVENT_PERSONAL, ID_FIELDS if clear_ids else ())


def seal_transition(record: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """The transition with ``email`` and ``traits`` sealed under its ``lead_id`` (a
    pseudonym already: the scorer's leads are keyed by pseudonyms in privacy mode)."""
    out = dict(record)
    personal = {name: record[name] for name in TRANSITION_PERSONAL if record.get(name)}
    out.update({name: empty.copy() if isinstance(empty, dict) else empty
                for name, empty in TRANSITION_PERSONAL.items()})  # fmt: skip
    out["sealed"] = seal(key, out["lead_id"], personal) if personal else None
    return out


def open_transition(record: Mapping[str, Any], key: bytes | None) -> dict[str, Any]:
    """The transition with ``email`` and ``traits`` back (empty for an erased lead)."""
    return _open(record, key, TRANSITION_PERSONAL, ())


def _open(
    record: Mapping[str, Any],
    key: bytes | None,
    personal: Mapping[str, Any],
    ids: tuple[str, ...],
) -> dict[str, Any]:
    out = dict(record)
    token = out.pop("sealed", None)
    out["sealed"] = None
    if not token:
        return out
    fields = unseal(key, token) or {}
    for name in (*personal, *ids):
        if name in fields:
            out[name] = fields[name]
    return out
