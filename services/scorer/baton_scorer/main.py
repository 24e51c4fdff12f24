"""``baton-scorer``: run one scorer worker (faust-streaming)."""

from __future__ import annotations

import asyncio

from faust.worker import Worker

from baton_scorer.app import create_app
from baton_scorer.config import ScorerSettings
from baton_scorer.rules import load_rules
from baton_shared.kafka import ensure_topics
from baton_shared.logs import configure_logging


def main() -> None:
    settings = ScorerSettings()
    configure_logging(settings.log_level, settings.log_format)
    rules = load_rules(settings.rules_file)
    topics = settings.topics
    # Faust tables must be co-partitioned with their source: create the topics
    # with the configured partition count before the worker declares anything.
    asyncio.run(
        ensure_topics(settings.kafka_bootstrap_servers, topics.all(), settings.topic_partitions)
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, rules)
    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
