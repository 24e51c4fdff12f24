"""``baton`` in privacy mode, on the real broker and database: export, replay and the
conversion report open sealed records with the deployment's keys; an erased lead's
records come out with no personal data, everyone else's in clear."""

from __future__ import annotations

import asyncio
import csv
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from baton_analytics.cli import main
from baton_shared.kafka import durable_producer, ensure_topics
from baton_shared.privacy import KeyStore, PrivacySettings, pseudonym, seal_event, seal_transition
from baton_shared.schemas import DeadLetter, EventType, LeadEvent, Stage, Transition
from baton_shared.topics import Topics, dlq
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration

PRIVACY_KEY = "analytics-privacy-key-0123456789abcdef"
NOW = datetime.now(UTC).replace(microsecond=0)
# user id, email, name, IP
KEPT = ("usr-ada-1815", "ada@example.com", "Ada Lovelace", "203.0.113.9")
ERASED = ("usr-hedy-1914", "hedy@example.com", "Hedy Lamarr", "198.51.100.7")


def events_of(user: str, email: str, name: str, ip: str) -> list[LeadEvent]:
    at = NOW - timedelta(hours=1)
    common = {"lead_id": user, "user_id": user, "received_at": at, "source": "segment"}
    return [
        LeadEvent(  # SendGrid's, filed under the email: merged into the user by the identify
            event_id=f"{name[0]}-click",
            lead_id=email,
            email=email,
            type=EventType.TRACK,
            name="Email Clicked",
            occurred_at=at - timedelta(minutes=1),
            received_at=at,
            source="sendgrid",
        ),
        LeadEvent(
            event_id=f"{name[0]}-identify",
            type=EventType.IDENTIFY,
            email=email,
            traits={"email": email, "name": name, "industry": "software"},
            ip=ip,
            occurred_at=at,
            **common,
        ),
        LeadEvent(
            event_id=f"{name[0]}-demo",
            type=EventType.TRACK,
            name="Demo Requested",
            properties={"note": f"call {name}"},
            occurred_at=at + timedelta(minutes=1),
            **common,
        ),
    ]


def transition_of(lead: str, email: str, name: str, *_: str) -> Transition:
    at = NOW - timedelta(minutes=30)
    return Transition(
        transition_id=f"{lead}-sql",
        lead_id=lead,
        from_stage=Stage.NEW,
        to_stage=Stage.SQL,
        score=100,
        fit=0,
        engagement=100,
        reason="Demo Requested",
        express=True,
        trigger_event_id=f"{lead}-demo",
        trigger_event="Demo Requested",
        occurred_at=at,
        rules_version="test",
        email=email,
        traits={"name": name, "industry": "software"},
    )


async def baton(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


@pytest.fixture
async def sealed_topics(
    kafka_bootstrap: str, pg_cluster, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> Topics:
    """Two people's events, transitions and a dead letter, sealed as the services seal
    them; the second person erased (their data key destroyed)."""
    url = pg_cluster.create_database(unique_name)
    for name, value in (("BATON_PRIVACY_KEY", PRIVACY_KEY), ("DATABASE_URL", url)):
        monkeypatch.setenv(name, value)
    settings = PrivacySettings()
    id_key = settings.privacy_keys.id_key
    topics = Topics(f"{unique_name}.")
    keys = await KeyStore.open(settings, database_url=url)
    records: list[tuple[str, str, bytes]] = []
    try:
        for person in (KEPT, ERASED):
            lead = pseudonym(id_key, person[0])
            events = events_of(*person)
            data_keys = await keys.keys({pseudonym(id_key, e.lead_id) for e in events})
            key = data_keys[lead]
            for e in events:
                clear = e.model_dump(mode="json", by_alias=True)
                sealed = seal_event(clear, id_key, data_keys.__getitem__)
                records.append((topics.events, sealed["lead_id"], orjson.dumps(sealed)))
            t = transition_of(lead, *person[1:]).model_dump(mode="json", by_alias=True)
            records.append((topics.transitions, lead, orjson.dumps(seal_transition(t, key))))
        identifies = [r for r in records if r[0] == topics.events and b'-identify"' in r[2]]
        for topic, lead, value in identifies:
            dead = DeadLetter(
                source_topic=topic,
                partition=0,
                offset=0,
                key=lead,
                value=value.decode(),  # each person's identify
                error="test",
                consumer="baton-scorer",
                failed_at=NOW,
            )
            records.append((dlq(topic), lead, dead.to_bytes()))
        # What an erasure destroys: the keys of the person's lead and of their email's.
        await keys.destroy([pseudonym(id_key, ERASED[0]), pseudonym(id_key, ERASED[1])])
    finally:
        await keys.close()
    await ensure_topics(kafka_bootstrap, topics.all(), partitions=3)
    producer = durable_producer(kafka_bootstrap)
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send(topic, value, key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("BATON_TOPIC_PREFIX", topics.prefix)
    return topics


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def leaks(text: str) -> list[str]:
    return [v for v in ERASED if v in text]


async def test_export_opens_sealed_records_and_leaves_an_erased_lead_empty(
    sealed_topics: Topics, tmp_path: Path
) -> None:
    out = {name: tmp_path / f"{name}.csv" for name in ("events", "transitions", "dlq")}
    assert await baton("export", "leads.events", "-o", str(out["events"])) == 0
    assert await baton("export", "leads.transitions", "-o", str(out["transitions"])) == 0
    assert await baton("export", "leads.events.dlq", "-o", str(out["dlq"])) == 0

    events = rows(out["events"])
    kept = [r for r in events if r["event_id"] == "A-identify" and r["email"] == KEPT[1]]
    assert len(kept) == 1 and orjson.loads(kept[0]["traits"])["name"] == KEPT[2]
    assert kept[0]["user_id"] == KEPT[0] and kept[0]["ip"] == KEPT[3]
    demo = [r for r in events if r["event_id"] == "A-demo"]
    assert orjson.loads(demo[0]["properties"]) == {"note": f"call {KEPT[2]}"}
    erased = [r for r in events if r["event_id"].startswith("H-")]
    assert len(erased) == 3 and all(r["lead_id"].startswith("p_") for r in erased)
    assert all(not r["email"] and not r["ip"] and r["traits"] == "{}" for r in erased)
    assert all(r["user_id"] in ("", r["lead_id"]) for r in erased)  # the pseudonym, as sent
    assert not any(r["sealed"] for r in events)  # opened, or dropped with the key gone

    transitions = {r["transition_id"]: r for r in rows(out["transitions"])}
    assert len(transitions) == 2
    assert {r["email"] for r in transitions.values()} == {KEPT[1], ""}
    dead = {v["event_id"]: v for v in (orjson.loads(r["value"]) for r in rows(out["dlq"]))}
    assert dead["A-identify"]["email"] == KEPT[1] and dead["A-identify"]["ip"] == KEPT[3]
    assert dead["H-identify"]["email"] is None and dead["H-identify"]["sealed"] is None
    for path in out.values():
        assert not leaks(path.read_text()), path


async def test_replay_scores_opened_events_and_an_erased_lead_without_personal_data(
    sealed_topics: Topics, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "replayed.jsonl"
    assert await baton("replay", "-o", str(output)) == 0
    # Each email lead merged into its user by pseudonyms (email_id), as the scorer does.
    assert "2 ids merged into other leads" in capsys.readouterr().err
    replayed = [orjson.loads(line) for line in output.read_text().splitlines()]
    sql = {t["email"]: t for t in replayed if t["to_stage"] == "sql"}
    assert set(sql) == {KEPT[1], None}  # both requested a demo; one is erased
    assert sql[KEPT[1]]["traits"]["name"] == KEPT[2]
    assert sql[None]["traits"] == {} and sql[None]["lead_id"].startswith("p_")
    assert not leaks(output.read_text())

    sandbox = f"{sealed_topics.prefix}sandbox.transitions"
    assert await baton("replay", "--to-topic", sandbox) == 0
    published = await read_all(os.environ["KAFKA_BOOTSTRAP_SERVERS"], sandbox)
    assert len(published) == len(replayed)  # sealed as the scorer writes them
    assert not leaks(str(published)) and KEPT[1] not in str(published)
    assert sum(bool(t["sealed"]) for t in published) == len(published) // 2


async def test_the_conversion_report_reads_the_traits_of_leads_not_erased(
    sealed_topics: Topics, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await baton("funnel", "--by", "industry", "--json") == 0
    report = orjson.loads(capsys.readouterr().out)
    by_key = {g["key"]: g for g in report["groups"]}
    assert by_key["software"]["sql"] == 1  # the kept lead; the erased one has no traits
