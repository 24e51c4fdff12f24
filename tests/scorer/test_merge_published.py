"""Every merge the scorer applies is published on ``leads.merges``, keyed by the survivor;
a rep's action keyed by a merged-away id goes on to the survivor."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest

from baton_scorer import core, handoff, step
from baton_shared.clock import utcnow
from baton_shared.schemas import Activity, ActivityKind, LeadMerged, decode
from tests.scorer.conftest import T0
from tests.scorer.test_kill import Collector
from tests.scorer.worker import event, produce, rules_worker_env, start_worker, wait_until

EMAIL = "x@acme.example"


def run(records, rules, states: dict | None = None) -> list[tuple[str, str, float | None]]:
    """Run each record (an event, or an activity), then every record it causes, through
    the step, on ``states``; the merges applied."""
    states = {} if states is None else states
    identity = step.Identity({}, states.__setitem__)

    def state(lead_id: str):
        return states.setdefault(lead_id, core.new_state())

    merged: list[tuple[str, str, float | None]] = []
    for record in records:
        source = step.Source.ACTIVITY if isinstance(record, Activity) else step.Source.EVENTS
        queue = deque([(source, record.to_bytes())])
        while queue:
            out = step.score_batch([queue.popleft()], state, rules, identity)
            merged += out.merged
            queue.extend((step.Source.STITCHED, value) for _, value in out.handoffs)
    return merged


def test_each_merged_id_is_named_with_its_final_survivor(make_event, rules) -> None:
    merged = run(
        [
            make_event("page", lead_id=EMAIL, email=EMAIL, page_category="pricing"),
            make_event("identify", lead_id="u1", user_id="u1", email=EMAIL),
            make_event("alias", lead_id="u2", user_id="u2", previous_id="u1"),
        ],
        rules,
    )
    assert [(m, s) for m, s, _ in merged] == [(EMAIL, "u1"), ("u1", "u2"), (EMAIL, "u2")]
    assert {at for _, _, at in merged} == {T0.timestamp()}
    records = handoff.merge_records(merged, utcnow())
    again = handoff.merge_records(merged, utcnow())
    assert [r.merge_id for r in records] == [r.merge_id for r in again]
    assert len({r.merge_id for r in records}) == 3


def test_a_reps_qualification_of_the_old_id_counts_for_the_survivor(make_event, rules) -> None:
    states: dict = {}
    qualified = Activity(
        activity_id="act-1",
        lead_id="u1",
        kind=ActivityKind.QUALIFIED,
        bant=["budget", "need"],
        occurred_at=T0,
    )
    run(
        [
            make_event("page", lead_id="u1", user_id="u1", page_category="pricing"),
            make_event("alias", lead_id="u2", user_id="u2", previous_id="u1"),
            qualified,
        ],
        rules,
        states,
    )
    assert sorted(states["u2"].to_dict()["bant"]) == ["budget", "need"]
    assert not states["u1"].to_dict()["bant"]


@pytest.mark.integration
async def test_a_worker_publishes_the_merge_keyed_by_the_survivor(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env, _ = await rules_worker_env(
        kafka_bootstrap, tmp_path, "name: m\nthresholds: {mql: 50, sql: 100}\n"
    )
    prefix = env["BATON_TOPIC_PREFIX"]
    async with Collector(kafka_bootstrap, f"{prefix}leads.merges") as seen:
        worker = start_worker(env, tmp_path / "scorer.log")
        try:
            await produce(
                kafka_bootstrap,
                f"{prefix}leads.events",
                [
                    event("e1", EMAIL, "page", email=EMAIL, page_category="pricing"),
                    event("i1", "u1", "identify", user_id="u1", email=EMAIL),
                ],
            )

            async def published() -> bool:
                return bool(seen.records)

            await wait_until(published, 60, "the merge on leads.merges")
        finally:
            worker.stop()
    [record] = {r["merge_id"]: r for r in seen.records}.values()
    merge = LeadMerged.model_validate(record)
    assert (merge.merged_id, merge.survivor_id) == (EMAIL, "u1")
    assert decode(LeadMerged, merge.to_bytes()) == merge
