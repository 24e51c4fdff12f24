"""Conversion reporting's pure core, shared by the SLA monitor's reporting store and
``baton funnel`` so both give the same figures by construction: records are folded into
per-lead journeys (:mod:`.journeys`), journeys into figures by one dimension
(:mod:`.figures`)."""

from baton_shared.conversion.figures import (
    DIMENSIONS,
    ConversionReport,
    Dimension,
    conversion_report,
    csv_rows,
)
from baton_shared.conversion.journeys import Fact, Journey, Ledger, lead_ids_of

__all__ = [
    "DIMENSIONS",
    "ConversionReport",
    "Dimension",
    "Fact",
    "Journey",
    "Ledger",
    "conversion_report",
    "csv_rows",
    "lead_ids_of",
]
