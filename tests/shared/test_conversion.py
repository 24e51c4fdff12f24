"""The conversion report's pure core over a generated history whose true figures the
test knows: every dimension's counts and rates match the plan that made the records,
whatever order the records are folded in and however they are split into batches."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from baton_shared.conversion import DIMENSIONS, Journey, Ledger, conversion_report
from tests.support.conversion_history import SINCE, UNTIL, assert_true_figures, history


def fold_in_batches(records: list, seed: int, batch: int) -> list[Journey]:
    """As the store does it: each batch folds into journeys read back from rows."""
    rows: dict[str, dict] = {}
    shuffled = records[:]
    random.Random(seed).shuffle(shuffled)
    for start in range(0, len(shuffled), batch):
        ledger = Ledger({k: Journey.from_row(v) for k, v in rows.items()})
        ledger.fold(shuffled[start : start + batch])
        rows |= {k: ledger.journeys[k].as_row() for k in ledger.changed}
    return [Journey.from_row(r) for r in rows.values()]


@pytest.mark.parametrize("by", [d for d in DIMENSIONS])
def test_every_dimension_reports_the_true_conversion(by: str) -> None:
    h = history()
    ledger = Ledger()
    ledger.fold(h.records)
    report = conversion_report(ledger.live(), SINCE, UNTIL, by)  # type: ignore[arg-type]
    assert_true_figures(report, h.truth[by])


@pytest.mark.parametrize(("seed", "batch"), [(1, 1), (2, 7), (3, 50), (4, 10_000)])
def test_order_and_batching_do_not_change_the_figures(seed: int, batch: int) -> None:
    h = history()
    journeys = fold_in_batches(h.records + h.records[:40], seed, batch)  # some re-delivered
    for by in ("source", "speed_to_lead", "rep"):
        assert_true_figures(conversion_report(journeys, SINCE, UNTIL, by), h.truth[by])  # type: ignore[arg-type]


def test_cycle_times_speed_to_lead_and_dispositions() -> None:
    ledger = Ledger()
    ledger.fold(history().records)
    total = conversion_report(ledger.live(), SINCE, UNTIL).total
    assert total.sql_to_accepted_seconds.p50 == 86400  # accepted a day after the SQL
    assert total.accepted_to_won_seconds.p90 == 10 * 86400
    assert total.mql_to_sql_seconds.p50 == 3600
    assert total.speed_to_lead_seconds.count == 11  # the first four SQLs of each source (3 + 4 + 4)
    assert total.rejected_by_disposition == {"no_budget": 3}
    assert total.lost_by_disposition == {"competitor": 4}
    assert total.sla_breached == 7  # every third SQL: 4 + 1 + 2


def test_mql_volume_against_its_target_counts_first_mqls_in_the_window() -> None:
    ledger = Ledger()
    ledger.fold(history().records)
    report = conversion_report(ledger.live(), SINCE, UNTIL, "all", mql_target_per_day=4)
    assert report.mql_volume.mql == 32  # 20 search + 12 newsletter; early leads and reviews not
    assert report.mql_volume.target == 28
    assert report.mql_volume.attainment == 32 / 28
    later = conversion_report(ledger.live(), UNTIL, UNTIL + timedelta(days=7))
    assert later.total.leads == 0 and later.mql_volume.attainment is None


def test_a_merged_lead_counts_once_with_both_histories() -> None:
    from baton_shared.schemas import LeadMerged

    h = history()
    ledger = Ledger()
    ledger.fold(h.records)
    merge = LeadMerged(
        merge_id="m-1",
        merged_id="google-0",
        survivor_id="newsletter-5",
        occurred_at=SINCE + timedelta(days=2),
    )
    ledger.fold([merge])
    by_lead = {j.lead_id: j for j in ledger.live()}
    assert "google-0" not in by_lead
    survivor = by_lead["newsletter-5"]
    assert survivor.won_at is not None  # google-0's win
    assert survivor.source == "google"  # its earlier touch is the first touch
    report = conversion_report(ledger.live(), SINCE, UNTIL)
    assert report.total.leads == 36
