"""The rules in use, changed without a restart: from the watched file or the rules topic.

Two sources, one rule for which wins: a valid document published on the compacted
rules topic (:mod:`baton_scorer.rules_topic`) is in use while it is the latest one
there; otherwise the rules file (``BATON_SCORER_RULES_FILE``, watched), or the
shipped defaults. The topic wins because every worker reads the same topic, so
all workers converge on one version; files are per machine. A tombstone on the
topic hands control back to the file.

An invalid file edit or topic document is refused — logged with the line and
field, counted in ``baton_scorer_rules_reload_errors_total`` — and the previous
version stays in use, so a typo never stops scoring.
"""

from __future__ import annotations

from pathlib import Path

from baton_scorer.metrics import RULES_RELOAD_ERRORS, RULES_VERSION
from baton_scorer.rules import Rules, RulesError, load_rules, parse_rules
from baton_shared.logs import get_logger

log = get_logger(__name__)


class RulesSource:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.file_rules: Rules = load_rules(path)
        self.topic_rules: Rules | None = None
        self.topic_origin: str | None = None
        self._stamp = self._file_stamp()
        self.rules: Rules = self.file_rules
        RULES_VERSION.labels(version=self.rules.version).set(1)

    @property
    def origin(self) -> str:
        """Where the rules in use come from: ``topic``, ``file`` or ``default``."""
        if self.topic_rules is not None:
            return "topic"
        return "file" if self.path is not None else "default"

    def _file_stamp(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def poll(self) -> bool:
        """Reload when the file changed; True when a new version is now in use."""
        stamp = self._file_stamp()
        if stamp is None or stamp == self._stamp or self.path is None:
            return False
        self._stamp = stamp
        try:
            rules = parse_rules(self.path.read_text(), str(self.path))
        except (RulesError, OSError) as exc:
            self._refuse(exc, str(self.path))
            return False
        self.file_rules = rules
        if self.topic_rules is not None:
            log.warning(
                "rules_file_changed_topic_wins",
                file_version=rules.version,
                version=self.rules.version,
            )
        return self._settle()

    def offer(self, text: str | None, origin: str) -> bool:
        """A document from the rules topic (``None``: tombstone); True when the version changed."""
        if text is None:
            self.topic_rules = None
            self.topic_origin = None
            log.info("rules_withdrawn_from_topic", origin=origin)
            return self._settle()
        try:
            rules = parse_rules(text, origin)
        except RulesError as exc:
            self._refuse(exc, origin)
            return False
        self.topic_rules = rules
        self.topic_origin = origin
        return self._settle()

    def _refuse(self, exc: Exception, origin: str) -> None:
        RULES_RELOAD_ERRORS.inc()
        log.error("rules_reload_refused", origin=origin, error=str(exc), keeping=self.rules.version)

    def _settle(self) -> bool:
        """Put the winning rules in use; True when that changed the version."""
        rules = self.topic_rules if self.topic_rules is not None else self.file_rules
        if rules.version == self.rules.version:
            self.rules = rules
            return False
        RULES_VERSION.labels(version=self.rules.version).set(0)
        RULES_VERSION.labels(version=rules.version).set(1)
        log.info(
            "rules_reloaded", previous=self.rules.version, version=rules.version, origin=self.origin
        )
        self.rules = rules
        return True
