"""``baton funnel --by DIMENSION``: the conversion report from the log.

Reads every retained record of the report's topics (no consumer group, up to the end
each partition has when reading starts), folds them into journeys and the report with
:mod:`baton_shared.conversion` — the code the SLA monitor's reporting store and
``GET /v1/reports/conversion`` use, so the figures agree. The window picks the cohort
(leads that entered the funnel in it); their outcomes are followed to now.
"""

from __future__ import annotations

import csv
import sys
from datetime import datetime, timedelta

import orjson

from baton_analytics import privacy
from baton_analytics.ranges import RangeError, ReadRange
from baton_analytics.source import TopicReader
from baton_shared.conversion import Dimension, Ledger, conversion_report, csv_rows
from baton_shared.conversion.facts import fact_from, fact_topics
from baton_shared.conversion.figures import CSV_COLUMNS, ConversionReport
from baton_shared.kafka_connection import KafkaConnection
from baton_shared.privacy import PrivacySettings
from baton_shared.topics import Topics

DEFAULT_WINDOW = timedelta(days=30)


async def read_report(
    bootstrap: KafkaConnection | str,
    topics: Topics,
    span: ReadRange,
    by: Dimension,
    now: datetime,
    mql_target_per_day: float | None = None,
    privacy_settings: PrivacySettings | None = None,
) -> ConversionReport:
    if span.from_offset is not None or span.to_offset is not None:
        raise RangeError("the conversion report takes a time window (--since/--until)")
    until = span.until or now
    since = span.since or until - DEFAULT_WINDOW
    names = fact_topics(topics)
    ledger = Ledger()
    reading = TopicReader(bootstrap, names, ReadRange(), optional=tuple(names))
    async with privacy.opener(privacy_settings, topics) as opener, reading as reader:
        async for batch in reader.batches():
            if opener is not None:  # traits give segment and industry
                batch = await opener.open(batch)
            facts = []
            for r in batch:
                try:
                    fact = fact_from(r.topic, r.value) if r.value is not None else None
                except ValueError:
                    continue  # the live consumers dead-letter it; so do we, by skipping
                if fact is not None:
                    facts.append(fact)
            ledger.fold(facts)
    return conversion_report(
        ledger.live(), min(since, until), max(since, until), by, mql_target_per_day
    )


def write(report: ConversionReport, fmt: str) -> None:
    """``json``, ``csv`` (one row per group, the total first) or ``text``, to stdout."""
    if fmt == "json":
        sys.stdout.buffer.write(
            orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_INDENT_2)
        )
        sys.stdout.write("\n")
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(csv_rows(report))
    else:
        print(render_text(report))


def render_text(report: ConversionReport) -> str:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    target = report.mql_volume
    lines = [
        f"Conversion of leads entering {report.since.isoformat()} → {report.until.isoformat()}, "
        f"by {report.by}",
        f"  MQLs {target.mql:,}"
        + (
            f" of a target of {target.target:,.0f} ({pct(target.attainment)})"
            if target.target
            else ""
        ),
        f"  {'key':<24} {'leads':>6} {'mql':>5} {'sql':>5} {'acc':>5} {'won':>5} "
        f"{'mql→sql':>8} {'sql→acc':>8} {'acc→won':>8} {'sql→won':>8} {'accept':>8}",
    ]
    for g in [report.total, *report.groups]:
        key = "total" if g is report.total else (g.key or "(none)")
        lines.append(
            f"  {key[:24]:<24} {g.leads:>6} {g.mql:>5} {g.sql:>5} {g.accepted:>5} {g.won:>5} "
            f"{pct(g.mql_to_sql_rate):>8} {pct(g.sql_to_accepted_rate):>8} "
            f"{pct(g.accepted_to_won_rate):>8} {pct(g.sql_to_won_rate):>8} "
            f"{pct(g.sql_acceptance_rate):>8}"
        )
    return "\n".join(lines)
