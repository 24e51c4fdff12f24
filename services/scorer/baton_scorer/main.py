"""``baton-scorer``: run one scorer worker (faust-streaming), or manage its rules.

    baton-scorer                         run a worker
    baton-scorer rules check FILE        validate a rules file, print its version
    baton-scorer rules publish FILE      validate, then publish it to <prefix>scorer.rules
    baton-scorer rules withdraw          tombstone: workers go back to their rules file

``check`` and ``publish`` exit with status 2 and the errors (file, line, field)
on stderr when the file is invalid; nothing is published then.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from baton_scorer.config import ScorerSettings
from baton_scorer.local_store import CHANGELOG_CONFIG, discard_stale_stores, is_persistent
from baton_scorer.rules import RulesError, load_rules
from baton_scorer.rules_source import RulesSource
from baton_scorer.rules_topic import publish_rules, read_rules_topic
from baton_shared.gc_tuning import tune_for_throughput
from baton_shared.kafka import ensure_topics
from baton_shared.logs import configure_logging


def run_worker() -> None:
    from faust.worker import Worker

    from baton_scorer.app import create_app, internal_topics

    settings = ScorerSettings()
    configure_logging(settings.log_level, settings.log_format, settings.log_hash_key)
    source = RulesSource(settings.rules_file)
    topics = settings.topics
    # Faust tables must be co-partitioned with their sources: create the topics
    # (and the two repartition topics) with the configured partition count before
    # the worker declares anything. The internal erasures topic too: a topic the
    # consumer subscribes to before its metadata shows it is ignored until the next
    # rebalance, and an erasure's linked ids would wait for that.
    erasures = f"{topics.group('baton-scorer')}-erasures"
    asyncio.run(
        ensure_topics(
            settings.kafka,
            [*topics.all(), *internal_topics(settings), erasures],
            settings.topic_partitions,
            settings.topic_durability,
        )
    )
    # The latest published rules are in use before the first event is scored.
    follower = read_rules_topic(
        settings.kafka, topics.scorer_rules, source, settings.topic_durability
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, source, follower)
    changelogs = {
        name: table.changelog_topic.get_topic_name() for name, table in app.tables.items()
    }
    # The changelogs exist, with their config, before the worker joins its group: the
    # assignment names their partitions' owners, which the lead lookup asks for (faust
    # would otherwise create them as it starts).
    asyncio.run(
        ensure_topics(
            settings.kafka,
            changelogs.values(),
            settings.topic_partitions,
            settings.topic_durability,
            compacted=True,
            config=CHANGELOG_CONFIG,
        )
    )
    if is_persistent(settings.store):
        discard_stale_stores(settings.kafka, Path(app.conf.tabledir), changelogs)
    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    tune_for_throughput()  # cached lead states are long-lived: keep the GC off them
    worker.execute_from_commandline()


def rules_command(args: argparse.Namespace) -> int:
    if args.action == "withdraw":
        settings = ScorerSettings()
        where = asyncio.run(
            publish_rules(
                settings.kafka, settings.topics.scorer_rules, None, settings.topic_durability
            )
        )
        print(f"withdrawn: {where.topic}[{where.partition}]@{where.offset}")
        return 0
    if args.file is None:
        print(f"baton-scorer rules {args.action}: a FILE is required", file=sys.stderr)
        return 2
    path = Path(args.file)
    try:
        rules = load_rules(path)
    except RulesError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.action == "check":
        print(rules.version)
        return 0
    settings = ScorerSettings()
    where = asyncio.run(
        publish_rules(
            settings.kafka,
            settings.topics.scorer_rules,
            path.read_text(),
            settings.topic_durability,
        )
    )
    print(f"published {rules.version} to {where.topic}[{where.partition}]@{where.offset}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="baton-scorer", description="Baton's scoring worker.")
    sub = p.add_subparsers(dest="command")
    rules = sub.add_parser("rules", help="check, publish or withdraw a rules file")
    rules.add_argument("action", choices=["check", "publish", "withdraw"])
    rules.add_argument("file", nargs="?", help="the rules YAML (check, publish)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "rules":
        sys.exit(rules_command(args))
    run_worker()


if __name__ == "__main__":
    main()
