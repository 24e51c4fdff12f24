"""The I/O shell of each subcommand: read the range, call the pure module, write."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import orjson
from pydantic import ValidationError

from baton_analytics import funnel as funnel_report
from baton_analytics import privacy, report, sink
from baton_analytics.compare import Outcomes, compare
from baton_analytics.export import TypedWriter, format_for, model_for, to_row, write_rows
from baton_analytics.funnel import Window
from baton_analytics.privacy import Opener
from baton_analytics.progress import Progress
from baton_analytics.ranges import RangeError, ReadRange
from baton_analytics.replay import Replay, ReplayResult, transitions_from
from baton_analytics.source import Fetched, TopicReader, in_time_order
from baton_scorer.rules import load_rules
from baton_shared.kafka_connection import KafkaConnection
from baton_shared.privacy import PrivacySettings
from baton_shared.schemas import (
    Activity,
    Assignment,
    LeadEvent,
    Record,
    SlaEvent,
    Transition,
    decode,
)
from baton_shared.topic_durability import Durability
from baton_shared.topics import Topics

R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class Target:
    bootstrap: KafkaConnection | str
    prefix: str
    partitions: int = 3  # of a sandbox topic replay creates
    durability: Durability = field(default_factory=Durability)  # of that sandbox topic
    privacy: PrivacySettings | None = None  # privacy mode: sealed records are opened

    @property
    def topics(self) -> Topics:
        return Topics(self.prefix)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def _records(
    reader: TopicReader, label: str, ordered: bool = False, opener: Opener | None = None
) -> AsyncIterator[list[Fetched]]:
    progress = Progress(label, reader.total)
    source = in_time_order(reader) if ordered else reader.batches()
    async for batch in source:
        yield batch if opener is None else await opener.open(batch)
        progress.advance(len(batch))
    progress.finish()


async def export(target: Target, topic: str, span: ReadRange, output: Path, fmt: str | None) -> int:
    fmt = format_for(output, fmt)
    name = target.prefix + topic
    model = model_for(topic)
    opening = privacy.opener(target.privacy, target.topics, clear_ids=True)
    async with opening as opener, TopicReader(target.bootstrap, [name], span) as reader:
        if model is not None:
            writer = TypedWriter(output, fmt, model)
            try:
                async for batch in _records(reader, f"export {name}", opener=opener):
                    writer.write(batch)
            finally:
                written = writer.close()
        else:
            rows = []
            async for batch in _records(reader, f"export {name}", opener=opener):
                rows += [to_row(r) for r in batch]
            written = write_rows(rows, output, fmt)
    say(f"wrote {written:,} records of {name} ({span.describe()}) to {output} ({fmt})")
    return 0


async def _decoded(target: Target, topic: str, model: type[R], span: ReadRange) -> list[R]:
    out: list[R] = []
    async with TopicReader(target.bootstrap, [topic], span, optional=(topic,)) as reader:
        async for batch in _records(reader, f"read {topic}"):
            for r in batch:
                try:
                    out.append(decode(model, r.value))
                except ValidationError:
                    continue  # the live consumer sent it to the DLQ; so do we, by skipping
    return out


async def funnel(target: Target, span: ReadRange, as_json: bool, min_leads: int) -> int:
    if span.from_offset is not None or span.to_offset is not None:
        raise RangeError("the funnel takes a time window (--since/--until), not offsets")
    t = target.topics
    follow = ReadRange(since=span.since)  # outcomes of leads in the window, up to now
    report_ = funnel_report.funnel(
        Window(span.since, span.until),
        transitions=await _decoded(target, t.transitions, Transition, follow),
        assignments=await _decoded(target, t.assignments, Assignment, follow),
        activities=await _decoded(target, t.activity, Activity, follow),
        sla=await _decoded(target, t.sla, SlaEvent, follow),
        events=await _decoded(target, t.events, LeadEvent, span),
        min_leads=min_leads,
    )
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(report_.to_dict(), option=orjson.OPT_INDENT_2))
        sys.stdout.write("\n")
    else:
        print(funnel_report.render_text(report_))
    return 0


async def replay(
    target: Target,
    span: ReadRange,
    *,
    now: datetime,
    rules_path: Path | None,
    output: Path | None,
    to_topic: str | None,
    candidate_path: Path | None,
    report: Path,
    fire_timers: bool = True,
    cold_start: bool = False,
) -> int:
    if to_topic is not None:
        sink.check_sandbox_topic(to_topic, target.topics)
    rules = load_rules(rules_path)
    replays = [Replay(rules)]
    if candidate_path is not None:
        replays.append(Replay(load_rules(candidate_path)))
    read = span
    if span.since is not None and not cold_start:
        # Leads carry their history into the window: score from the beginning of the
        # log, report the window's transitions.
        read = ReadRange(until=span.until)
    elif span.since is not None or span.from_offset is not None:
        say(
            "note: leads start from an empty state at the start of the range; events before "
            "it are not counted"
        )
    async with privacy.opener(target.privacy, target.topics) as opener:
        outcomes = await _feed(target, read, replays, opener)
    end = span.until or now
    whole = [r.finish(end.timestamp() if fire_timers else None) for r in replays]
    since_at = span.since.timestamp() if read is not span and span.since is not None else None
    results = whole if since_at is None else [transitions_from(r, since_at) for r in whole]
    current = results[0]
    window = f"; transitions from {span.since.isoformat()}" if read is not span else ""
    say(
        f"replayed {current.events:,} events ({read.describe()}{window}) "
        f"with {current.rules_version}: "
        f"{len(current.transitions):,} transitions, {current.duplicates:,} duplicates dropped, "
        f"{current.held_anonymous:,} anonymous events never identified, "
        f"{len(current.merged):,} ids merged into other leads"
    )
    if output is not None:
        sink.write_jsonl(current.transitions, output)
        say(f"wrote {len(current.transitions):,} transitions to {output}")
    if to_topic is not None:
        await _publish(target, current.transitions, to_topic)
        say(f"produced {len(current.transitions):,} transitions to topic {to_topic}")
    if candidate_path is not None:
        _compare(whole[0], whole[1], outcomes, since_at, span, report)
    return 0


async def _publish(target: Target, transitions: list[Transition], topic: str) -> None:
    """To a sandbox topic; in privacy mode sealed, as the scorer writes them."""
    async with privacy.opener(target.privacy, target.topics) as opener:
        if opener is not None:
            transitions = await opener.seal(transitions)
    await sink.publish(
        transitions,
        target.bootstrap,
        topic,
        partitions=target.partitions,
        durability=target.durability,
    )


async def _feed(
    target: Target, span: ReadRange, replays: list[Replay], opener: Opener | None
) -> Outcomes:
    """Feed every replay in the live scorer's order (sealed events opened); return the
    leads' outcomes."""
    t = target.topics
    outcomes = Outcomes()
    async with TopicReader(
        target.bootstrap, [t.events, t.activity], span, optional=(t.activity,)
    ) as reader:
        async for batch in _records(reader, "replay", ordered=True, opener=opener):
            _score_batch(batch, t.activity, replays, outcomes)
    return outcomes


def _score_batch(
    batch: list[Fetched], activity_topic: str, replays: list[Replay], outcomes: Outcomes
) -> None:
    values: list[bytes] = []  # encoded events, scored together up to the next activity
    for r in batch:
        if r.topic == activity_topic:
            try:
                activity = Activity.model_validate_json(r.value or b"")
            except ValidationError:
                continue  # undecodable: the live scorer dead-lettered it too
            outcomes.note(activity)
            for rp in replays:
                rp.score_records(values)
                rp.activity(activity)
            values = []
        else:
            values.append(r.value or b"")
    for rp in replays:
        rp.score_records(values)


def _compare(
    current: ReplayResult,
    candidate: ReplayResult,
    outcomes: Outcomes,
    since_at: float | None,
    span: ReadRange,
    path: Path,
) -> None:
    comparison = compare(current, candidate, outcomes, since_at)
    print(report.render_text(comparison))
    try:
        path.write_text(report.render_html(comparison, span.describe()))
    except OSError as exc:
        raise sink.SinkError(f"cannot write the report {path}: {exc}") from exc
    print(f"report: {path}")
