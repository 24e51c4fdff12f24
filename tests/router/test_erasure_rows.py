"""The pure parts of an erasure in the router: which pseudonyms an erase request names,
what is left of a stored transition, and the id kept rows take."""

from __future__ import annotations

from baton_router.erasure import subjects_of
from baton_router.store.erasure import scrubbed_transition
from baton_shared.erasure_steps import erased_id
from baton_shared.privacy.pseudonyms import pseudonym

ID_KEY = b"k" * 32


def test_subjects_are_pseudonyms_as_ingest_files_them() -> None:
    lead = pseudonym(ID_KEY, "usr-1")
    given = {"email": " Ada@Example.COM ", "user_id": "usr-1", "lead_id": lead}
    assert subjects_of(given, ID_KEY) == [lead, pseudonym(ID_KEY, "ada@example.com")]
    assert subjects_of({"lead_id": "usr-2"}, ID_KEY) == [pseudonym(ID_KEY, "usr-2")]
    # Privacy mode off: the ids themselves.
    assert subjects_of({"email": "Ada@Example.com", "anonymous_id": "a-1"}, None) == [
        "ada@example.com",
        "a-1",
    ]


def test_a_scrubbed_transition_keeps_no_personal_field() -> None:
    stored = {
        "lead_id": "p_1",
        "email": "ada@example.com",
        "traits": {"name": "Ada"},
        "sealed": "v1:p_1:xyz",
        "trigger_event_id": "merge:p_2",
        "score": 91.0,
    }
    scrubbed = scrubbed_transition(stored, "erased_1")
    assert scrubbed == {
        "lead_id": "erased_1",
        "email": None,
        "traits": {},
        "sealed": None,
        "trigger_event_id": "merge:erased",
        "score": 91.0,
    }


def test_erased_ids_are_stable_per_erasure_and_lead() -> None:
    assert erased_id("e1", "p_1") == erased_id("e1", "p_1")
    assert len({erased_id("e1", "p_1"), erased_id("e1", "p_2"), erased_id("e2", "p_1")}) == 3
    assert "p_1" not in erased_id("e1", "p_1")
