"""Progress of a long read on stderr: records done, events/s and ETA.

Quiet for short runs: the first line appears after ``quiet_seconds``, then at most
once per ``every_seconds``. The clock is injectable so the arithmetic is testable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    def __init__(
        self,
        label: str,
        total: int | None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        quiet_seconds: float = 2.0,
        every_seconds: float = 1.0,
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.quiet_seconds = quiet_seconds
        self.every_seconds = every_seconds
        self.done = 0
        self.started = clock()
        self._last_print: float | None = None

    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def eta_seconds(self) -> float | None:
        rate = self.rate()
        if self.total is None or rate <= 0:
            return None
        return max(0, self.total - self.done) / rate

    def line(self) -> str:
        of = f"/{self.total:,}" if self.total is not None else ""
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        return (
            f"{self.label}: {self.done:,}{of}{pct} records, {self.rate():,.0f} events/s, "
            f"ETA {format_eta(self.eta_seconds())}"
        )

    def advance(self, n: int) -> None:
        self.done += n
        now = self.clock()
        if now - self.started < self.quiet_seconds:
            return
        if self._last_print is not None and now - self._last_print < self.every_seconds:
            return
        self._last_print = now
        print(self.line(), file=self.stream, flush=True)

    def finish(self) -> None:
        """A last line, only when progress was shown (a short run stays silent)."""
        if self._last_print is not None:
            elapsed = self.clock() - self.started
            print(
                f"{self.label}: {self.done:,} records in {elapsed:.1f} s, "
                f"{self.rate():,.0f} events/s",
                file=self.stream,
                flush=True,
            )
