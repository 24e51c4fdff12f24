"""Disposition codes: why a rep rejected or lost a lead, as a code reports can count.

One list for every service: the router's one-click reject page offers these, and the
scorer decides what each code does next. Free text stays a note beside the code.
"""

from __future__ import annotations

from enum import StrEnum


class Disposition(StrEnum):
    NO_BUDGET = "no_budget"
    NO_AUTHORITY = "no_authority"
    NO_NEED = "no_need"
    BAD_TIMING = "bad_timing"
    COMPETITOR = "competitor"
    BAD_DATA = "bad_data"
    NOT_A_FIT = "not_a_fit"
    UNRESPONSIVE = "unresponsive"

    @property
    def label(self) -> str:
        """How a person reads the code: ``no_budget`` → ``No budget``."""
        return self.value.replace("_", " ").capitalize()


DEFAULT_DISPOSITIONS: tuple[Disposition, ...] = tuple(Disposition)
