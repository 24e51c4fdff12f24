"""Structured logging: one key=value (or JSON) line per event, never personal data.

Baton's own log calls are rendered by structlog itself, so they stay structured
even when a framework (faust's worker) replaces the root handler; third-party
stdlib loggers (uvicorn, aiokafka) go through the same renderer via the root handler.
Every line passes :mod:`baton_shared.log_privacy` first: leads are named by a keyed
hash, email addresses and quoted database values are removed.
"""

from __future__ import annotations

import logging
import secrets
import sys
from typing import Any

import structlog

from baton_shared.log_privacy import Pseudonymise, scrub, scrub_stdlib_records


def _renderer(fmt: str) -> structlog.types.Processor:
    if fmt == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=False)


_generation = 0


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time (not the object at configure
    time, which a test runner or daemon may have closed and replaced since)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(
    level: str = "INFO", fmt: str = "json", hash_key: bytes | None = None
) -> None:
    """Configure structlog and the stdlib root logger once, at start-up. ``hash_key``
    keys the hash naming leads (``ServiceSettings.log_hash_key``); without one, a
    random key of this process's own."""
    global _generation
    _generation += 1
    numeric = logging.getLevelName(level.upper())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    private = [Pseudonymise(hash_key or secrets.token_bytes(32)), scrub]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, *private, _renderer(fmt)],
        logger_factory=structlog.WriteLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(_CurrentStderr())  # type: ignore[arg-type]
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                *private,
                _renderer(fmt),
            ],
        )
    )
    scrub_stdlib_records()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, numeric))


class _ModuleLogger:
    """A logger made at import time that follows ``configure_logging`` called later.

    ``structlog.get_logger().bind(...)`` would freeze whatever configuration exists at
    import (structlog's defaults: wrong format, no level filter)."""

    def __init__(self, name: str):
        self._name = name
        self._bound: Any = None
        self._generation = -1

    def __getattr__(self, attr: str) -> Any:
        if self._bound is None or self._generation != _generation:
            self._bound = structlog.get_logger().bind(logger=self._name)
            self._generation = _generation
        return getattr(self._bound, attr)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return _ModuleLogger(name)  # type: ignore[return-value]
