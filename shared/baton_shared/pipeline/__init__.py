"""One consume pipeline for every plain-aiokafka service: decode (or dead-letter),
handle a batch with bounded retries, commit last. Start at :class:`ConsumePipeline`."""

from baton_shared.pipeline.handle import each
from baton_shared.pipeline.pipeline import ConsumePipeline
from baton_shared.pipeline.retry import RetryPolicy, is_transient

__all__ = ["ConsumePipeline", "RetryPolicy", "each", "is_transient"]
