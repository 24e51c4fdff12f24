"""``baton`` against the real broker: export, funnel and replay over prefixed topics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from baton_analytics.cli import main
from baton_analytics.replay import replay_all
from baton_scorer.rules import load_rules
from baton_shared.kafka import durable_producer, ensure_topics
from baton_shared.schemas import (
    Activity,
    ActivityKind,
    EventType,
    LeadEvent,
    Record,
    SlaEvent,
    SlaStatus,
    Stage,
    Transition,
)
from baton_shared.topics import Topics
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


async def produce(bootstrap: str, topic: str, records: list[Record], key: str = "lead_id") -> None:
    await ensure_topics(bootstrap, [topic], partitions=3)
    producer = durable_producer(bootstrap)
    await producer.start()
    try:
        for r in records:
            await producer.send(topic, r.to_bytes(), key=getattr(r, key).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def produce_raw(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = durable_producer(bootstrap)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, v, key=b"raw")
    finally:
        await producer.stop()


async def baton(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


def event(lead: str, n: int, name: str | None = None, category: str | None = None) -> LeadEvent:
    at = NOW - timedelta(hours=2) + timedelta(minutes=n)
    return LeadEvent(
        event_id=f"{lead}-{n}",
        lead_id=lead,
        type=EventType.TRACK if name else EventType.PAGE,
        name=name,
        page_category=category,
        occurred_at=at,
        received_at=at,
        source="test",
    )


def history() -> list[LeadEvent]:
    """Twenty leads: a third ask for a demo, a third read pricing and attend a webinar."""
    out = []
    for i in range(20):
        lead = f"lead-{i:02d}"
        out.append(event(lead, i, category="blog"))
        if i % 3 == 0:
            out.append(event(lead, i + 1, name="Demo Requested"))
        elif i % 3 == 1:
            out.append(event(lead, i + 1, category="pricing"))
            out.append(event(lead, i + 2, name="Webinar Attended"))
    return out


async def test_export_writes_a_range_to_parquet_and_csv_without_touching_live_groups(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    topics = Topics(f"{unique_name}.")
    events = history()
    await produce(kafka_bootstrap, topics.events, list(events))
    await produce_raw(kafka_bootstrap, topics.events, [b"not json at all"])
    group = f"{unique_name}-live-scorer"
    live = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await live.start()
    tp = TopicPartition(topics.events, 0)
    try:
        live.assign([tp])
        await live.commit({tp: 1})
    finally:
        await live.stop()

    parquet, csv = tmp_path / "events.parquet", tmp_path / "first.csv"
    prefix = ["--bootstrap", kafka_bootstrap, "--prefix", topics.prefix]
    assert await baton("export", "leads.events", "-o", str(parquet), *prefix) == 0
    assert await baton("export", "leads.events", "--to-offset", "2", "-o", str(csv), *prefix) == 0

    table = pq.read_table(parquet)
    assert table.num_rows == len(events) + 1
    ids = [i for i in table.column("event_id").to_pylist() if i is not None]
    assert sorted(ids) == sorted(e.event_id for e in events)
    assert str(table.schema.field("occurred_at").type) == "timestamp[us, tz=UTC]"
    assert [v for v in table.column("_value").to_pylist() if v] == ["not json at all"]
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("_topic,_partition,_offset,_timestamp,_key,schema,event_id")
    assert 1 < len(lines) <= 1 + 2 * 3  # at most two records from each of three partitions

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        groups = [g[0] for g in await admin.list_consumer_groups()]
    finally:
        await admin.close()
    assert offsets[tp].offset == 1  # the live group's position is untouched
    assert not [g for g in groups if unique_name in g and g != group]


async def test_export_of_any_other_topic_infers_its_columns(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    topic = f"{unique_name}.crm.deals"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    await produce_raw(
        kafka_bootstrap,
        topic,
        [
            b'{"deal": "d-1", "amount": 1200, "closed_at": "2026-11-02T10:00:00Z"}',
            b'{"deal": "d-2", "amount": 99.5, "tags": ["smb"]}',
        ],
    )
    out = tmp_path / "deals.parquet"

    code = await baton(
        "export",
        "crm.deals",
        "-o",
        str(out),
        "--bootstrap",
        kafka_bootstrap,
        "--prefix",
        f"{unique_name}.",
    )

    assert code == 0
    rows = pq.read_table(out).to_pylist()
    assert [r["amount"] for r in rows] == [1200.0, 99.5]
    assert rows[0]["closed_at"] == datetime(2026, 11, 2, 10, tzinfo=UTC)
    assert rows[1]["tags"] == '["smb"]'


async def test_export_of_a_missing_topic_names_it(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.parquet"
    code = await baton(
        "export",
        "leads.nothing",
        "-o",
        str(out),
        "--bootstrap",
        kafka_bootstrap,
        "--prefix",
        f"{unique_name}.",
    )
    assert code == 2
    assert f"topic '{unique_name}.leads.nothing' does not exist" in capsys.readouterr().err


async def test_replay_writes_the_cores_transitions_to_a_file_and_a_sandbox_topic(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    topics = Topics(f"{unique_name}.")
    events = history()
    await produce(kafka_bootstrap, topics.events, list(events))
    out = tmp_path / "transitions.jsonl"
    sandbox = f"{unique_name}.sandbox.transitions"

    code = await baton(
        "replay",
        "--since",
        "1d",
        "-o",
        str(out),
        "--to-topic",
        sandbox,
        "--bootstrap",
        kafka_bootstrap,
        "--prefix",
        topics.prefix,
    )

    assert code == 0
    written = [Transition.model_validate_json(line) for line in out.read_text().splitlines()]
    expected = replay_all(list(events), load_rules(), None).transitions
    key = lambda t: t.transition_id  # noqa: E731
    assert sorted(written, key=key) == sorted(expected, key=key)
    assert {t.to_stage for t in written} == {Stage.SQL, Stage.MQL}
    on_topic = await read_all(kafka_bootstrap, sandbox)
    assert sorted(r["transition_id"] for r in on_topic) == sorted(map(key, expected))


async def test_replay_compare_writes_an_html_report_and_a_summary(
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topics = Topics(f"{unique_name}.")
    await produce(kafka_bootstrap, topics.events, history())
    accepted = [
        Activity(
            activity_id=f"a-{i}",
            lead_id=f"lead-{i:02d}",
            kind=ActivityKind.ACCEPTED,
            occurred_at=NOW,
        )
        for i in (1, 4)
    ]
    closed = [
        Activity(
            activity_id=f"c-{i}",
            lead_id=f"lead-{i:02d}",
            kind=kind,
            occurred_at=NOW + timedelta(days=1),
        )
        for i, kind in ((4, ActivityKind.WON), (7, ActivityKind.WON), (2, ActivityKind.LOST))
    ]
    await produce(kafka_bootstrap, topics.activity, [*accepted, *closed])
    text = files("baton_scorer").joinpath("default_rules.yaml").read_text()
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(text.replace("  sql: 100\n", "  sql: 55\n", 1))
    report = tmp_path / "report.html"

    code = await baton(
        "replay",
        "--compare",
        str(candidate),
        "--report",
        str(report),
        "--bootstrap",
        kafka_bootstrap,
        "--prefix",
        topics.prefix,
    )

    assert code == 0
    summary = capsys.readouterr().out
    assert "SQL leads             7 →       14   +7 (+100.0%)" in summary
    assert "7  now SQL" in summary
    assert "accepted by reps: 2 leads; SQL under current 0, under candidate 2" in summary
    assert "won deals: 2 leads; SQL under current 0, under candidate 2" in summary
    assert "lost deals: 1 leads; SQL under current 0, under candidate 0" in summary
    html = report.read_text()
    assert "<svg" in html and "lead-01" in html and "<script" not in html
    assert "<td>won deals</td><td>2</td><td>0</td><td>2</td>" in html


async def test_funnel_json_reports_conversion_breaches_and_lift(
    kafka_bootstrap: str, unique_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    topics = Topics(f"{unique_name}.")
    events = history()
    result = replay_all(list(events), load_rules(), None)
    await produce(kafka_bootstrap, topics.events, list(events))
    await produce(kafka_bootstrap, topics.transitions, list(result.transitions))
    sql_leads = sorted({t.lead_id for t in result.transitions if t.to_stage == Stage.SQL})
    await produce(
        kafka_bootstrap,
        topics.activity,
        [
            Activity(
                activity_id=f"acc-{lead}",
                lead_id=lead,
                kind=ActivityKind.ACCEPTED,
                occurred_at=NOW,
            )
            for lead in sql_leads[:3]
        ]
        + [
            Activity(
                activity_id=f"won-{sql_leads[3]}",
                lead_id=sql_leads[3],
                kind=ActivityKind.WON,
                occurred_at=NOW,
            )
        ],
    )
    clocks = []
    for i, lead in enumerate(sql_leads[:4]):
        status = SlaStatus.MET if i % 2 else SlaStatus.BREACHED
        clocks.append(
            SlaEvent(
                event_id=f"sla-{lead}",
                clock_id=f"clock-{lead}",
                lead_id=lead,
                rep_id="r",
                assignment_id=f"as-{lead}",
                status=status,
                started_at=NOW - timedelta(hours=1),
                deadline_at=NOW,
                at=NOW,
                elapsed_seconds=60.0 * (i + 1),
            )
        )
    await produce(kafka_bootstrap, topics.sla, clocks)

    code = await baton(
        "funnel",
        "--since",
        "1d",
        "--json",
        "--bootstrap",
        kafka_bootstrap,
        "--prefix",
        topics.prefix,
    )

    assert code == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["sql"] == 7 and report["sql_accepted"] == 3
    assert report["mql"] == 7 and report["mql_to_sql"] == 0
    assert report["breach_rate"] == 0.5 and report["clocks"] == 4
    assert report["speed_to_lead_seconds"] == {"p50": 120.0, "p90": 240.0, "p99": 240.0}
    assert report["sql_won"] == 1
    top = report["signals"][0]
    assert top["signal"] == "event:Demo Requested" and top["lift"] > 2
    assert top["accepted_or_won_leads"] == 4  # three accepted, one won


async def test_replay_since_counts_each_leads_earlier_history(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    topics = Topics(f"{unique_name}.")
    pricing = event("warm", 0, category="pricing")  # 40 points, two hours ago
    webinar = event("warm", 110, name="Webinar Attended")  # 20 more: MQL, ten minutes ago
    await ensure_topics(kafka_bootstrap, [topics.events], partitions=3)
    producer = durable_producer(kafka_bootstrap)
    await producer.start()
    try:
        for e in (pricing, webinar):
            await producer.send_and_wait(
                topics.events,
                e.to_bytes(),
                key=b"warm",
                timestamp_ms=int(e.occurred_at.timestamp() * 1000),
            )
    finally:
        await producer.stop()
    warm, cold = tmp_path / "warm.jsonl", tmp_path / "cold.jsonl"
    common = ["--since", "1h", "--bootstrap", kafka_bootstrap, "--prefix", topics.prefix]

    assert await baton("replay", "-o", str(warm), *common) == 0
    assert await baton("replay", "-o", str(cold), "--cold-start", *common) == 0

    [mql] = [Transition.model_validate_json(x) for x in warm.read_text().splitlines()]
    assert (mql.lead_id, mql.to_stage, mql.trigger_event_id) == ("warm", Stage.MQL, "warm-110")
    assert cold.read_text() == ""  # the webinar alone is 20 points


async def test_replay_of_a_single_partition_topic_keeps_its_offset_order(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    topics = Topics(f"{unique_name}.")
    events = history()
    await ensure_topics(kafka_bootstrap, [topics.events], partitions=1)
    await produce(kafka_bootstrap, topics.events, list(events))
    out = tmp_path / "transitions.jsonl"

    code = await baton(
        "replay", "-o", str(out), "--bootstrap", kafka_bootstrap, "--prefix", topics.prefix
    )

    assert code == 0
    written = [Transition.model_validate_json(line) for line in out.read_text().splitlines()]
    assert written == replay_all(list(events), load_rules(), None).transitions
