"""Privacy mode: pseudonymous ids and personal fields sealed with per-lead keys that
an erasure destroys (crypto-shredding).

- :mod:`.settings`: ``BATON_PRIVACY_KEY`` (on/off, required in production) and the
  keys derived from it; ``BATON_PRIVACY_KEY_CACHE_SECONDS``.
- :mod:`.pseudonyms`: the keyed hash ids travel as.
- :mod:`.sealing`: AES-GCM tokens under one lead's data key.
- :mod:`.events`: which fields of an event or transition are sealed, which
  pseudonymised (pure).
- :mod:`.keystore`: the data keys and the erasure record, in PostgreSQL.
"""

from baton_shared.privacy.erasures import ERASURE_STEPS, Erasure
from baton_shared.privacy.events import (
    event_subject,
    open_event,
    open_transition,
    seal_event,
    seal_transition,
)
from baton_shared.privacy.keystore import KeyStore, KeyStoreUnavailable
from baton_shared.privacy.pseudonyms import is_pseudonym, pseudonym, pseudonym_of_identity
from baton_shared.privacy.sealing import SealError, seal, sealed_subject, unseal
from baton_shared.privacy.settings import PrivacyKeys, PrivacySettings, derive_keys

__all__ = [
    "ERASURE_STEPS",
    "Erasure",
    "KeyStore",
    "KeyStoreUnavailable",
    "PrivacyKeys",
    "PrivacySettings",
    "SealError",
    "derive_keys",
    "event_subject",
    "is_pseudonym",
    "open_event",
    "open_transition",
    "pseudonym",
    "pseudonym_of_identity",
    "seal",
    "seal_event",
    "seal_transition",
    "sealed_subject",
    "unseal",
]
