"""Settings read from the environment (unsafe demo secrets refused outside local), and the
topic names they resolve to."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from baton_ingest.config import LOCAL_WRITE_KEY, IngestSettings
from baton_shared import topics
from baton_shared.settings import (
    LOCAL_ADMIN_TOKEN,
    DatabaseSettings,
    ServiceSettings,
    to_asyncpg_url,
)
from baton_shared.topics import Topics, dlq

STRONG_TOKEN = "s3cr3t-admin-token-0123456789"
PRIVACY_KEY = "a-privacy-master-key-for-tests"  # required in production


# --- database URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://baton:pw@db.internal:5432/baton",
        "postgres://baton:pw@db.internal:5432/baton",
        "postgresql+asyncpg://baton:pw@db.internal:5432/baton",
    ],
)
def test_postgres_urls_become_asyncpg_urls(url: str) -> None:
    assert to_asyncpg_url(url) == "postgresql+asyncpg://baton:pw@db.internal:5432/baton"


def test_asyncpg_url_keeps_query_parameters() -> None:
    url = "postgresql://u@h/db?sslmode=require&application_name=baton"
    assert to_asyncpg_url(url) == "postgresql+asyncpg://u@h/db?sslmode=require&application_name=baton"


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("mysql://root:hunter2@db/baton", "mysql"),
        ("sqlite:///baton.db", "sqlite"),
        ("postgresql+psycopg://u:hunter2@h/db", "postgresql+psycopg"),
    ],
)
def test_non_postgres_url_is_a_clear_error_without_the_password(url: str, scheme: str) -> None:
    with pytest.raises(ValueError, match="postgresql://") as caught:
        to_asyncpg_url(url)
    assert repr(scheme) in str(caught.value)
    assert "hunter2" not in str(caught.value)


# --- service settings ------------------------------------------------------------------------


def test_defaults_are_local(clean_env: pytest.MonkeyPatch) -> None:
    s = ServiceSettings()
    assert s.env == "local"
    assert s.is_local


def test_settings_are_read_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    clean_env.setenv("BATON_TOPIC_PREFIX", "ci.")
    s = ServiceSettings()
    assert s.kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert s.topics.events == "ci.leads.events"


def test_unknown_env_value_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BATON_ENV", "prod")
    with pytest.raises(ValidationError, match="BATON_ENV"):
        ServiceSettings()


@pytest.mark.parametrize(("env", "local"), [("local", True), ("test", True), ("production", False)])
def test_is_local_only_for_local_and_test(clean_env: pytest.MonkeyPatch, env: str, local: bool):
    clean_env.setenv("BATON_ENV", env)
    clean_env.setenv("BATON_PRIVACY_KEY", PRIVACY_KEY)
    assert ServiceSettings().is_local is local


def test_production_refuses_the_local_admin_token(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BATON_ENV", "production")
    clean_env.setenv("BATON_PRIVACY_KEY", PRIVACY_KEY)
    with pytest.raises(ValidationError, match="BATON_ADMIN_TOKEN"):
        DatabaseSettings()
    clean_env.setenv("BATON_ADMIN_TOKEN", LOCAL_ADMIN_TOKEN)
    with pytest.raises(ValidationError, match="BATON_ADMIN_TOKEN"):
        DatabaseSettings()


def test_production_refusal_applies_to_every_database_service(
    clean_env: pytest.MonkeyPatch,
) -> None:
    from baton_router.config import RouterSettings
    from baton_sla_monitor.config import SlaSettings

    clean_env.setenv("BATON_ENV", "production")
    clean_env.setenv("BATON_PRIVACY_KEY", PRIVACY_KEY)
    for cls in (RouterSettings, SlaSettings):
        with pytest.raises(ValidationError, match="BATON_ADMIN_TOKEN"):
            cls()


def test_production_accepts_a_real_admin_token(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BATON_ENV", "production")
    clean_env.setenv("BATON_PRIVACY_KEY", PRIVACY_KEY)
    clean_env.setenv("BATON_ADMIN_TOKEN", STRONG_TOKEN)
    clean_env.setenv("DATABASE_URL", "postgres://baton:pw@db:5432/baton")
    s = DatabaseSettings()
    assert s.admin_token == STRONG_TOKEN
    assert s.sqlalchemy_url == "postgresql+asyncpg://baton:pw@db:5432/baton"


def test_local_mode_allows_the_local_admin_token(clean_env: pytest.MonkeyPatch) -> None:
    assert DatabaseSettings().admin_token == LOCAL_ADMIN_TOKEN
    clean_env.setenv("BATON_ENV", "test")
    assert DatabaseSettings().admin_token == LOCAL_ADMIN_TOKEN


def test_short_admin_token_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BATON_ADMIN_TOKEN", "short")
    with pytest.raises(ValidationError, match="BATON_ADMIN_TOKEN"):
        DatabaseSettings()


# --- ingest write keys -------------------------------------------------------------------------


def test_write_keys_are_comma_separated_and_trimmed(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BATON_INGEST_WRITE_KEYS", " key-a, key-b ,,key-c ")
    assert IngestSettings().write_keys == frozenset({"key-a", "key-b", "key-c"})


def test_single_write_key(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BATON_INGEST_WRITE_KEYS", "only-key")
    assert IngestSettings().write_keys == frozenset({"only-key"})


@pytest.mark.parametrize("raw", ["", " ", ",", " , ,"])
def test_empty_write_key_list_is_refused(clean_env: pytest.MonkeyPatch, raw: str) -> None:
    clean_env.setenv("BATON_INGEST_WRITE_KEYS", raw)
    with pytest.raises(ValidationError, match="BATON_INGEST_WRITE_KEYS"):
        IngestSettings()


def test_local_write_key_is_the_local_default(clean_env: pytest.MonkeyPatch) -> None:
    assert IngestSettings().write_keys == frozenset({LOCAL_WRITE_KEY})


def test_production_refuses_the_local_write_key(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BATON_ENV", "production")
    clean_env.setenv("BATON_PRIVACY_KEY", PRIVACY_KEY)
    with pytest.raises(ValidationError, match="BATON_INGEST_WRITE_KEYS"):
        IngestSettings()
    clean_env.setenv("BATON_INGEST_WRITE_KEYS", f"real-key,{LOCAL_WRITE_KEY}")
    with pytest.raises(ValidationError, match="BATON_INGEST_WRITE_KEYS"):
        IngestSettings()
    clean_env.setenv("BATON_INGEST_WRITE_KEYS", "real-key")
    assert IngestSettings().write_keys == frozenset({"real-key"})


# --- topic names ---------------------------------------------------------------------------


def test_unprefixed_names_are_the_base_names() -> None:
    t = Topics()
    assert (t.events, t.transitions, t.assignments, t.activity, t.sla) == (
        topics.LEADS_EVENTS,
        topics.LEADS_TRANSITIONS,
        topics.LEADS_ASSIGNMENTS,
        topics.LEADS_ACTIVITY,
        topics.LEADS_SLA,
    )


@pytest.mark.parametrize("prefix", ["", "t1a2b3c4.", "staging-"])
def test_prefix_applies_to_every_topic_and_group(prefix: str) -> None:
    t = Topics(prefix)
    named = [t.events, t.express, t.transitions, t.assignments, t.activity, t.sla, t.merges,
             t.accounts_transitions, t.erasures]  # fmt: skip
    assert named == [prefix + base for base in topics.ALL]
    assert t.group("baton-scorer") == prefix + "baton-scorer"


def test_dlq_name_is_the_topic_plus_dlq() -> None:
    assert dlq("leads.events") == "leads.events.dlq"
    assert dlq(Topics("p.").events) == "p.leads.events.dlq"


def test_all_lists_every_topic_and_its_dlq_once() -> None:
    t = Topics("p.")
    names = t.all()
    main = [t.events, t.express, t.transitions, t.assignments, t.activity, t.sla, t.merges,
            t.accounts_transitions, t.erasures]  # fmt: skip
    assert len(names) == len(set(names)) == 2 * len(main)
    assert set(names) == set(main) | {dlq(n) for n in main}
    assert all(n.startswith("p.") for n in names)


def test_prefixes_isolate_deployments() -> None:
    assert not set(Topics("a.").all()) & set(Topics("b.").all())
    assert Topics("a.").group("g") != Topics("b.").group("g")
