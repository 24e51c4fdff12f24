"""``baton funnel --by``'s output: the conversion report as CSV (the total first, one row
per group), as the API's JSON document, and as a table; the options parse."""

from __future__ import annotations

import csv
import io

import orjson

from baton_analytics import conversion
from baton_analytics.cli import build_parser
from baton_shared.conversion import ConversionReport, Ledger, conversion_report
from tests.support.conversion_history import SINCE, UNTIL, history


def report_by(by: str) -> ConversionReport:
    ledger = Ledger()
    ledger.fold(history().records)
    return conversion_report(ledger.live(), SINCE, UNTIL, by, mql_target_per_day=4)  # type: ignore[arg-type]


def test_csv_has_the_total_then_a_row_per_group(capsys) -> None:
    conversion.write(report_by("source"), "csv")
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["key"] for r in rows] == ["total", "g2", "google", "newsletter"]
    google = rows[1 + 1]
    assert (google["leads"], google["sql"], google["won"]) == ("20", "10", "3")
    assert float(google["sql_to_won_rate"]) == 0.3
    assert float(rows[0]["sql_to_accepted_p50_seconds"]) == 86400


def test_json_is_the_api_document(capsys) -> None:
    report = report_by("speed_to_lead")
    conversion.write(report, "json")
    assert ConversionReport.model_validate(orjson.loads(capsys.readouterr().out)) == report


def test_text_names_every_group_and_the_target(capsys) -> None:
    conversion.write(report_by("campaign"), "text")
    out = capsys.readouterr().out
    assert "MQLs 32 of a target of 28" in out
    for key in ("q4-search", "nov-news", "reviews"):
        assert key in out


def test_funnel_takes_by_csv_and_a_target() -> None:
    args = build_parser().parse_args(
        ["funnel", "--by", "rep", "--csv", "--mql-target-per-day", "12", "--since", "30d"]
    )
    assert (args.by, args.csv, args.mql_target_per_day) == ("rep", True, 12.0)
