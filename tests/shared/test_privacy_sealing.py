"""Privacy mode's pure parts: pseudonyms, sealed tokens, and what of an event or a
transition travels sealed, pseudonymised or clear."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from baton_shared.privacy import (
    SealError,
    derive_keys,
    is_pseudonym,
    open_event,
    open_transition,
    pseudonym,
    pseudonym_of_identity,
    seal,
    seal_event,
    seal_transition,
    sealed_subject,
    unseal,
)
from baton_shared.privacy.cache import KeyCache
from baton_shared.privacy.sealing import new_data_key
from baton_shared.schemas import LeadEvent, Transition
from baton_shared.settings import ServiceSettings

KEYS = derive_keys("a-master-key-for-tests-only")
ID_KEY = KEYS.id_key
AT = datetime(2026, 5, 5, 9, 0, tzinfo=UTC)
PERSONAL = ("ada@example.com", "Ada Lovelace", "203.0.113.77", "user-42", "anon-7", "old-id")


def event(**overrides: Any) -> dict[str, Any]:
    record = LeadEvent(
        event_id="m-1",
        lead_id="user-42",
        user_id="user-42",
        anonymous_id="anon-7",
        previous_id="old-id",
        email="ada@example.com",
        type="page",
        name="Pricing",
        occurred_at=AT,
        received_at=AT,
        source="segment",
        page_category="pricing",
        page={"url": "https://x.io/pricing?email=ada@example.com", "path": "/pricing"},
        campaign={"source": "newsletter"},
        user_agent="Mozilla/5.0",
        ip="203.0.113.77",
        group_id="acme",
        properties={"plan": "pro"},
        traits={"name": "Ada Lovelace", "title": "CTO"},
        context={"ip": "203.0.113.77", "traits": {"name": "Ada Lovelace"}},
    ).model_dump(by_alias=True, mode="json")
    return {**record, **overrides}


# --- pseudonyms ----------------------------------------------------------------------------


def test_a_pseudonym_is_keyed_stable_and_shaped() -> None:
    p = pseudonym(ID_KEY, "user-42")
    assert p == pseudonym(ID_KEY, "user-42")
    assert p != pseudonym(derive_keys("another-master-key-0000").id_key, "user-42")
    assert p.startswith("p_") and len(p) == 34 and is_pseudonym(p)
    assert not is_pseudonym("user-42") and not is_pseudonym("p_" + "g" * 32)


def test_an_identity_email_is_filed_as_ingest_files_it() -> None:
    email = pseudonym(ID_KEY, "ada@example.com")
    assert pseudonym_of_identity(ID_KEY, " Ada@Example.COM ") == email
    assert pseudonym_of_identity(ID_KEY, "User-42") == pseudonym(ID_KEY, "User-42")


def test_the_derived_keys_differ_from_each_other_and_the_master() -> None:
    assert len({KEYS.id_key, KEYS.wrap_key, b"a-master-key-for-tests-only"}) == 3
    assert "a-master" not in repr(KEYS)


# --- sealed tokens -------------------------------------------------------------------------


def test_a_sealed_token_opens_with_its_key_only() -> None:
    key = new_data_key()
    token = seal(key, "p_lead", {"email": "ada@example.com", "n": 2**70})
    assert token.startswith("v1:p_lead:") and "ada" not in token
    assert sealed_subject(token) == "p_lead"
    assert unseal(key, token) == {"email": "ada@example.com", "n": 2**70}
    assert unseal(None, token) is None
    assert unseal(new_data_key(), token) is None  # a later key of the same subject


def test_a_token_cannot_pass_for_another_subjects() -> None:
    key = new_data_key()
    token = seal(key, "p_a", {"email": "ada@example.com"})
    forged = token.replace("v1:p_a:", "v1:p_b:")
    assert unseal(key, forged) is None


@pytest.mark.parametrize("token", ["", "v2:p_a:AAAA", "v1::AAAA", "v1:p_a:%%%", "v1:p_a:AAAA"])
def test_what_is_not_a_token_is_refused(token: str) -> None:
    with pytest.raises(SealError):
        unseal(new_data_key(), token)


# --- events --------------------------------------------------------------------------------


def test_a_sealed_event_holds_no_personal_data_in_clear() -> None:
    key = new_data_key()
    subjects: list[str] = []
    sealed = seal_event(event(), ID_KEY, lambda s: subjects.append(s) or key)
    wire = LeadEvent.model_validate(sealed).to_bytes()
    for value in PERSONAL:
        assert value.encode() not in wire
    assert subjects == [sealed["lead_id"]] == [pseudonym(ID_KEY, "user-42")]
    assert sealed_subject(sealed["sealed"]) == sealed["lead_id"]
    assert sealed["user_id"] == pseudonym(ID_KEY, "user-42")
    assert sealed["anonymous_id"] == pseudonym(ID_KEY, "anon-7")
    assert sealed["previous_id"] == pseudonym(ID_KEY, "old-id")
    assert sealed["email_id"] == pseudonym(ID_KEY, "ada@example.com")
    assert (sealed["email"], sealed["ip"], sealed["user_agent"], sealed["page"]) == (None,) * 4
    assert sealed["traits"] == sealed["context"] == sealed["properties"] == {}
    kept = ("event_id", "type", "name", "occurred_at", "source", "page_category", "campaign",
            "group_id", "possible_duplicate", "schema")  # fmt: skip
    assert {k: sealed[k] for k in kept} == {k: event()[k] for k in kept}


def test_an_opened_event_has_its_personal_fields_back_under_pseudonymous_ids() -> None:
    key = new_data_key()
    sealed = seal_event(event(), ID_KEY, lambda _: key)
    opened = open_event(sealed, key)
    clear = event()
    for name in ("email", "ip", "user_agent", "page", "traits", "context", "properties"):
        assert opened[name] == clear[name]
    assert opened["lead_id"] == opened["user_id"] == pseudonym(ID_KEY, "user-42")
    assert opened["sealed"] is None
    LeadEvent.model_validate(opened)
    with_ids = open_event(sealed, key, clear_ids=True)
    assert (with_ids["user_id"], with_ids["anonymous_id"], with_ids["previous_id"]) == (
        "user-42", "anon-7", "old-id"
    )  # fmt: skip


def test_an_erased_event_opens_to_nothing_personal() -> None:
    sealed = seal_event(event(), ID_KEY, lambda _: new_data_key())
    for key in (None, new_data_key()):
        opened = open_event(sealed, key, clear_ids=True)
        assert opened["sealed"] is None
        blob = orjson.dumps(opened)
        for value in PERSONAL:
            assert value.encode() not in blob
        LeadEvent.model_validate(opened)


def test_an_event_without_personal_fields_is_not_sealed() -> None:
    bare = event(user_id=None, anonymous_id=None, previous_id=None, email=None, ip=None,
                 user_agent=None, page=None, properties={}, traits={}, context={})  # fmt: skip
    sealed = seal_event(bare, ID_KEY, lambda _: pytest.fail("no key needed"))
    assert sealed["sealed"] is None and sealed["lead_id"] == pseudonym(ID_KEY, "user-42")
    assert open_event(sealed, None) == sealed


def test_a_clear_event_opens_as_it_is() -> None:
    clear = event()
    assert open_event(clear, None) == clear


# --- transitions ---------------------------------------------------------------------------


def transition() -> dict[str, Any]:
    return Transition(
        transition_id="t-1", lead_id=pseudonym(ID_KEY, "user-42"), from_stage="new",
        to_stage="sql", score=80, fit=30, engagement=50, reason="demo", trigger_event_id="m-1",
        occurred_at=AT, rules_version="v1", email="ada@example.com",
        traits={"name": "Ada Lovelace"},
    ).model_dump(by_alias=True, mode="json")  # fmt: skip


def test_a_transition_seals_email_and_traits_under_its_lead() -> None:
    key = new_data_key()
    sealed = seal_transition(transition(), key)
    wire = Transition.model_validate(sealed).to_bytes()
    assert b"ada@example.com" not in wire and b"Ada Lovelace" not in wire
    assert sealed_subject(sealed["sealed"]) == sealed["lead_id"]
    assert open_transition(sealed, key) == {**transition(), "sealed": None}
    erased = open_transition(sealed, None)
    assert (erased["email"], erased["traits"], erased["sealed"]) == (None, {}, None)


# --- settings ------------------------------------------------------------------------------


def test_privacy_mode_is_off_without_a_key(clean_env: pytest.MonkeyPatch) -> None:
    settings = ServiceSettings()
    assert not settings.privacy_enabled and settings.privacy_keys is None
    clean_env.setenv("BATON_PRIVACY_KEY", "")  # as compose passes an unset one
    assert not ServiceSettings().privacy_enabled
    assert settings.privacy_key_cache_seconds == 60


def test_privacy_mode_derives_its_keys_from_the_master_key(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BATON_PRIVACY_KEY", "a-master-key-for-tests-only")
    clean_env.setenv("BATON_PRIVACY_KEY_CACHE_SECONDS", "5")
    settings = ServiceSettings()
    assert settings.privacy_enabled and settings.privacy_keys == KEYS
    assert settings.privacy_key_cache_seconds == 5
    assert "a-master-key" not in repr(settings)


def test_production_requires_a_privacy_key(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BATON_ENV", "production")
    with pytest.raises(ValidationError, match="BATON_PRIVACY_KEY"):
        ServiceSettings()
    clean_env.setenv("BATON_PRIVACY_KEY", "short")
    with pytest.raises(ValidationError, match="BATON_PRIVACY_KEY"):
        ServiceSettings()
    clean_env.setenv("BATON_PRIVACY_KEY", "a-master-key-for-tests-only")
    assert ServiceSettings().privacy_enabled


# --- the key cache -------------------------------------------------------------------------


def test_a_cached_key_expires_after_its_ttl() -> None:
    cache = KeyCache(ttl_seconds=60, max_keys=10)
    cache.put("p_a", b"k", now=0)
    assert cache.get("p_a", now=59.9) == b"k"
    assert cache.get("p_a", now=60) is None and len(cache) == 0


def test_the_cache_keeps_at_most_its_bound_dropping_the_least_recently_used() -> None:
    cache = KeyCache(ttl_seconds=60, max_keys=2)
    cache.put("p_a", b"a", now=0)
    cache.put("p_b", b"b", now=0)
    assert cache.get("p_a", now=1) == b"a"  # p_b is now the least recently used
    cache.put("p_c", b"c", now=1)
    assert len(cache) == 2 and cache.get("p_b", now=1) is None
    cache.drop(["p_a"])
    assert cache.get("p_a", now=1) is None and cache.get("p_c", now=1) == b"c"


def test_a_zero_ttl_caches_nothing() -> None:
    cache = KeyCache(ttl_seconds=0, max_keys=10)
    cache.put("p_a", b"k", now=0)
    assert cache.get("p_a", now=0) is None
