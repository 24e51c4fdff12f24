"""Parsing ranges, progress lines, export rows, the sandbox guard and the help text."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from baton_analytics.cli import build_parser, main
from baton_analytics.export import ExportError, format_for, to_row
from baton_analytics.progress import Progress
from baton_analytics.ranges import RangeError, build_range, parse_time
from baton_analytics.sink import SinkError, check_sandbox_topic
from baton_analytics.source import Fetched
from baton_shared.topics import Topics

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_times_are_iso_or_a_span_before_now() -> None:
    assert parse_time("7d", NOW, "--since") == datetime(2026, 11, 16, 12, 0, tzinfo=UTC)
    assert parse_time("90m", NOW, "--since") == datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
    assert parse_time("2026-11-02", NOW, "--since") == datetime(2026, 11, 2, tzinfo=UTC)
    with pytest.raises(RangeError, match=r"--since 'last week': not a time.*7d"):
        parse_time("last week", NOW, "--since")


def test_a_range_is_times_or_offsets_never_both_and_ordered() -> None:
    with pytest.raises(RangeError, match="not both"):
        build_range("7d", None, 0, None, NOW)
    with pytest.raises(RangeError, match=r"--until .* must be after --since"):
        build_range("1d", "7d", None, None, NOW)
    with pytest.raises(RangeError, match="--to-offset must be above --from-offset"):
        build_range(None, None, 10, 5, NOW)


def test_progress_shows_rate_and_eta_only_for_long_runs() -> None:
    clock = [0.0]
    out = io.StringIO()
    progress = Progress("replay", 1000, out, clock=lambda: clock[0])
    progress.advance(100)
    assert out.getvalue() == ""  # a short run stays quiet
    clock[0] = 4.0
    progress.advance(300)
    assert out.getvalue() == "replay: 400/1,000 (40%) records, 100 events/s, ETA 0m06s\n"


def test_export_rows_carry_kafka_coordinates_and_typed_fields() -> None:
    record = Fetched(
        topic="leads.sla",
        partition=2,
        offset=7,
        timestamp=1_700_000_000_000,
        key=b"lead-1",
        value=b'{"status": "met", "at": "2026-11-02T09:00:00+00:00", "properties": {"a": 1}}',
    )

    row = to_row(record)

    assert row["_partition"] == 2 and row["_offset"] == 7 and row["_key"] == "lead-1"
    assert row["at"] == datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert row["properties"] == '{"a":1}'
    with pytest.raises(ExportError, match=r"name it \.parquet or \.csv"):
        format_for(Path("out.xlsx"), None)


@pytest.mark.parametrize("name", ["leads.transitions", "acme.leads.transitions"])
def test_replay_refuses_the_live_transitions_topic(name: str) -> None:
    with pytest.raises(SinkError, match="refusing to write replayed transitions"):
        check_sandbox_topic(name, Topics("acme."))
    check_sandbox_topic("sandbox.transitions", Topics("acme."))


def test_every_subcommand_help_teaches_with_examples() -> None:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in ("export", "funnel", "replay"):
        text = sub[name].format_help()
        assert "examples:" in text and f"baton {name} " in text
    assert "from question to report" in parser.format_help()


def test_a_bad_option_value_is_one_clear_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["replay", "--to-topic", "leads.transitions", "--bootstrap", "127.0.0.1:1"])

    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("baton replay: refusing to write replayed transitions")
    assert "Traceback" not in err
