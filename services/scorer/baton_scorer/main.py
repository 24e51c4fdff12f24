"""``baton-scorer``: run one scorer worker (faust-streaming)."""

from __future__ import annotations

import asyncio

from faust.worker import Worker

from baton_scorer.app import create_app, internal_topics
from baton_scorer.config import ScorerSettings
from baton_scorer.rules_source import RulesSource
from baton_shared.kafka import ensure_topics
from baton_shared.logs import configure_logging


def main() -> None:
    settings = ScorerSettings()
    configure_logging(settings.log_level, settings.log_format)
    source = RulesSource(settings.rules_file)
    topics = settings.topics
    # Faust tables must be co-partitioned with their sources: create the topics
    # (and the two repartition topics) with the configured partition count before
    # the worker declares anything.
    asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap_servers,
            [*topics.all(), *internal_topics(settings)],
            settings.topic_partitions,
        )
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, source)
    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
