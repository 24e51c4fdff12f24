"""``baton``: the analysts' command. Argument parsing, help and the I/O shell.

Each subcommand reads a bounded range of topics with a group-less reader
(:mod:`baton_analytics.source`), hands plain records to a pure module
(:mod:`~baton_analytics.export`, :mod:`~baton_analytics.funnel`,
:mod:`~baton_analytics.replay`, :mod:`~baton_analytics.compare`) and writes what
that returns. Errors the user can fix end with exit status 2 and one line naming
what is wrong; nothing here prints a traceback for them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from baton_analytics import commands, conversion
from baton_analytics.export import ExportError
from baton_analytics.ranges import RangeError, build_range
from baton_analytics.sink import SinkError
from baton_analytics.source import SourceError
from baton_router.config_file import cli as routing
from baton_scorer.rules import RulesError
from baton_shared.clock import utcnow
from baton_shared.conversion import DIMENSIONS
from baton_shared.gc_tuning import batch_gc
from baton_shared.privacy import KeyStoreUnavailable
from baton_shared.settings import ServiceSettings

DESCRIPTION = """\
Ask Baton's Kafka log what happened, and what would have happened.

Every subcommand reads a range of topics without joining a consumer group, so the
live services are never disturbed. Kafka and the topic prefix come from
KAFKA_BOOTSTRAP_SERVERS and BATON_TOPIC_PREFIX (or --bootstrap / --prefix). In privacy
mode (BATON_PRIVACY_KEY) sealed records are opened with the data keys at DATABASE_URL;
an erased lead's records have no personal data.

A session, from question to report:

  # what does the funnel look like this month?
  baton funnel --since 30d

  # would the candidate rules qualify better leads?
  baton replay --since 30d --rules current.yaml --compare candidate.yaml \\
      --report candidate.html

  # take the raw events to a notebook
  baton export leads.events --since 30d -o events.parquet

`baton routing` keeps the router's configuration (reps, pools, rules, accounts,
nurture tracks) as a YAML file: export it, review a change, apply it (DATABASE_URL).

Run `baton <command> --help` for each command's options and examples.
"""

RANGE_HELP = """\
range (default: the whole topic):
  --since/--until take ISO 8601 (2026-11-02, 2026-11-02T09:30:00+01:00; UTC when no
  zone is given) or a span before now (90m, 36h, 7d, 2w); --until is exclusive.
  --from-offset/--to-offset apply to every partition (to-offset exclusive).
"""

EXPORT_EPILOG = (
    RANGE_HELP
    + """
examples:
  baton export leads.events --since 7d -o events.parquet
  baton export leads.sla --since 2026-11-01 --until 2026-11-08 -o sla.csv
  baton export leads.transitions --from-offset 0 --to-offset 5000 -o t.parquet

One row per record: _topic, _partition, _offset, _timestamp, _key, then the record's
fields (nested values as JSON text, *_at fields as UTC timestamps).
"""
)

FUNNEL_EPILOG = (
    RANGE_HELP
    + """
The window selects leads by the time of their transitions; their later assignments,
rep activity and SLA events are read up to now, so a lead qualified in the window is
followed to its outcome.

examples:
  baton funnel --since 30d
  baton funnel --since 2026-10-01 --until 2026-11-01 --json > october.json

With --by (or --csv) it prints the conversion report instead: the leads that entered
the funnel in the window (default the last 30 days), followed to now, grouped by a
dimension, with MQL -> SQL -> accepted -> won conversion and cycle times; the same
figures as the SLA monitor's GET /v1/reports/conversion. It reads the topics' whole
retained history.

  baton funnel --by speed_to_lead --since 2026-10-01 --until 2026-11-01
  baton funnel --by campaign --since 30d --csv > campaigns.csv
"""
)

REPLAY_EPILOG = (
    RANGE_HELP
    + """
Replays leads.events (and reps' qualifications and rejections from leads.activity)
through the scorer's pure core, exactly as the live scorer scores them, with the
rules file you give.
With --since, every lead's earlier history still counts: the log is scored from its
beginning and the transitions from --since on are reported (--cold-start: score only
the window's events, faster, but leads start empty). An offset range is scored as it
is. Recycle timers due by the end of the range fire (--no-timers: none).

examples:
  # the transitions the given rules produce, as JSON lines
  baton replay --since 30d --rules rules.yaml -o transitions.jsonl

  # into a sandbox topic (never the live leads.transitions)
  baton replay --since 30d --rules rules.yaml --to-topic sandbox.transitions

  # current versus candidate rules: text summary here, charts in the HTML report;
  # leads accepted, rejected, won or lost on leads.activity are shown under both
  baton replay --since 30d --rules current.yaml --compare candidate.yaml \\
      --report compare.html
"""
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="baton", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _connection_options(parser, None)
    # The same options after the subcommand (``baton replay --bootstrap ...``) win.
    connection = argparse.ArgumentParser(add_help=False)
    _connection_options(connection, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help,
            description=description,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[connection],
        )

    export = command(
        "export",
        help="a topic range to Parquet or CSV",
        description="Write a range of any topic to a Parquet or CSV file.",
        epilog=EXPORT_EPILOG,
    )
    export.add_argument("topic", help="topic name, e.g. leads.events (the prefix is added)")
    export.add_argument("-o", "--output", type=Path, required=True, help="file to write")
    export.add_argument("--format", choices=("parquet", "csv"), help="default: from the suffix")
    _range_options(export)

    funnel = command(
        "funnel",
        help="conversion, speed-to-lead, breaches and signal lift over a window",
        description=(
            "MQL→SQL conversion, SQL→accepted and SQL→won/lost, speed-to-lead "
            "percentiles, SLA breach rate and per-signal lift (signals over-represented "
            "among leads accepted or won) over a window."
        ),
        epilog=FUNNEL_EPILOG,
    )
    funnel.add_argument("--json", action="store_true", help="machine-readable output")
    funnel.add_argument(
        "--by", choices=DIMENSIONS, help="conversion report grouped by this dimension"
    )
    funnel.add_argument("--csv", action="store_true", help="conversion report as CSV")
    funnel.add_argument(
        "--mql-target-per-day", type=float, help="conversion report: MQL volume target per day"
    )
    funnel.add_argument(
        "--min-leads", type=int, default=2, help="signals seen on fewer leads are left out"
    )
    _range_options(funnel)

    replay = command(
        "replay",
        help="re-score history with a rules file; compare candidate rules",
        description="Re-score leads.events with a rules file, or compare two rules files.",
        epilog=REPLAY_EPILOG,
    )
    replay.add_argument(
        "--rules", type=Path, help="rules file (default: the scorer's shipped rules)"
    )
    replay.add_argument("-o", "--output", type=Path, help="write transitions as JSON lines")
    replay.add_argument("--to-topic", help="write transitions to this sandbox topic")
    replay.add_argument(
        "--compare", type=Path, metavar="CANDIDATE.yaml", help="compare against these rules"
    )
    replay.add_argument(
        "--report",
        type=Path,
        default=Path("baton-compare.html"),
        help="HTML report of --compare (default: baton-compare.html)",
    )
    replay.add_argument(
        "--cold-start",
        action="store_true",
        help="with --since: score only the window's events (leads start empty)",
    )
    replay.add_argument(
        "--no-timers",
        action="store_true",
        help="do not fire recycle timers that fall due before the end of the range",
    )
    _range_options(replay)
    routing.add_routing_parser(sub)
    return parser


def _connection_options(p: argparse.ArgumentParser, default: str | None) -> None:
    g = p.add_argument_group("connection")
    g.add_argument(
        "--bootstrap", default=default, help="Kafka bootstrap servers (KAFKA_BOOTSTRAP_SERVERS)"
    )
    g.add_argument(
        "--prefix", default=default, help="topic prefix of the deployment (BATON_TOPIC_PREFIX)"
    )


def _range_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("range")
    g.add_argument("--since", help="start time (ISO 8601 or 7d, 36h, ...)")
    g.add_argument("--until", help="end time, exclusive (default: now)")
    g.add_argument("--from-offset", type=int, help="first offset of every partition")
    g.add_argument("--to-offset", type=int, help="end offset of every partition (exclusive)")


def _settings(args: argparse.Namespace) -> commands.Target:
    settings = ServiceSettings()
    kafka = settings.kafka_connection(args.bootstrap or settings.kafka_bootstrap_servers)
    return commands.Target(
        bootstrap=kafka,
        prefix=settings.topic_prefix if args.prefix is None else args.prefix,
        partitions=settings.topic_partitions,
        durability=settings.topic_durability,
        privacy=settings,
    )


async def _run(args: argparse.Namespace, now: datetime) -> int:
    target = _settings(args)
    span = build_range(args.since, args.until, args.from_offset, args.to_offset, now)
    if args.command == "export":
        return await commands.export(target, args.topic, span, args.output, args.format)
    if args.command == "funnel" and (args.by or args.csv):
        by, fmt = args.by or "all", "csv" if args.csv else "json" if args.json else "text"
        got = await conversion.read_report(
            target.bootstrap,
            target.topics,
            span,
            by,
            now,
            args.mql_target_per_day,
            target.privacy,
        )
        conversion.write(got, fmt)
        return 0
    if args.command == "funnel":
        return await commands.funnel(target, span, args.json, args.min_leads)
    if args.command == "replay":
        options: dict[str, Any] = {
            "rules_path": args.rules,
            "output": args.output,
            "to_topic": args.to_topic,
            "candidate_path": args.compare,
            "report": args.report,
            "fire_timers": not args.no_timers,
            "cold_start": args.cold_start,
        }
        return await commands.replay(target, span, now=now, **options)
    raise AssertionError(args.command)


USER_ERRORS = (
    RangeError,
    SourceError,
    ExportError,
    SinkError,
    RulesError,
    ValidationError,
    KeyStoreUnavailable,
)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "routing":  # the router's database, not Kafka
        return routing.run(args)
    # aiokafka logs connection retries; our one-line errors say what failed instead.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        with batch_gc():
            return asyncio.run(_run(args, utcnow()))
    except USER_ERRORS as exc:
        print(f"baton {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"baton {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
