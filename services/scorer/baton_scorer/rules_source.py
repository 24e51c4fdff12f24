"""The rules in use, reloaded without a restart when the watched file changes.

An invalid edit is refused (logged with the line and field, counted) and the
previous version stays in use, so a typo never stops scoring.
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
        self.rules: Rules = load_rules(path)
        self._stamp = self._file_stamp()
        RULES_VERSION.labels(version=self.rules.version).set(1)

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
            RULES_RELOAD_ERRORS.inc()
            log.error("rules_reload_refused", error=str(exc), keeping=self.rules.version)
            return False
        if rules.version == self.rules.version:
            return False
        RULES_VERSION.labels(version=self.rules.version).set(0)
        RULES_VERSION.labels(version=rules.version).set(1)
        log.info("rules_reloaded", previous=self.rules.version, version=rules.version)
        self.rules = rules
        return True
