"""The merge of partitions into time order: whole batches sorted at once give exactly
the order of the record-at-a-time k-way merge, however the records arrive."""

from __future__ import annotations

import heapq
import random

import pytest
from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from baton_analytics import source
from baton_analytics.source import Fetched, TimeOrder

Key = tuple[int, str, int, int]


@pytest.fixture(params=["rust", "python"])
def keys_by(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test twice: keys computed by the compiled loop, and by the Python one."""
    if request.param == "rust" and source.time_order_keys is None:
        pytest.skip("baton_scorer_native is not built here")
    if request.param == "python":
        monkeypatch.setattr(source, "time_order_keys", None)
    return request.param


def record(tp: TopicPartition, offset: int, timestamp: int) -> Fetched:
    return Fetched(tp.topic, tp.partition, offset, timestamp, key=None, value=b"")


def heads_merge(logs: dict[TopicPartition, list[Fetched]]) -> list[Fetched]:
    """The reference: repeatedly take the partition head with the smallest key."""

    def key(r: Fetched) -> Key:
        return (r.timestamp, r.topic, r.partition, r.offset)

    heads = [(key(log[0]), tp, 0) for tp, log in logs.items() if log]
    heapq.heapify(heads)
    out = []
    while heads:
        _, tp, i = heapq.heappop(heads)
        out.append(logs[tp][i])
        if i + 1 < len(logs[tp]):
            heapq.heappush(heads, (key(logs[tp][i + 1]), tp, i + 1))
    return out


def random_logs(rng: random.Random) -> dict[TopicPartition, list[Fetched]]:
    partitions = [TopicPartition("p.leads.events", p) for p in range(rng.randint(1, 4))]
    partitions += [TopicPartition("p.leads.activity", p) for p in range(rng.randint(0, 2))]
    logs = {}
    for tp in partitions:
        ts, log = rng.randint(0, 50), []
        for offset in range(rng.randint(0, 40)):
            ts += rng.choice((0, 0, 1, 2, 5, -3, -20))  # producers' clocks: not monotonic
            log.append(record(tp, 100 + offset, ts))
        logs[tp] = log
    return logs


@pytest.mark.usefixtures("keys_by")
@pytest.mark.parametrize("seed", range(200))
def test_batches_merge_exactly_like_taking_the_smallest_head(seed: int) -> None:
    rng = random.Random(seed)
    logs = random_logs(rng)
    order = TimeOrder(list(logs))
    cursor = dict.fromkeys(logs, 0)
    out: list[Fetched] = []
    for tp, log in logs.items():
        if not log:
            order.done(tp)
    while any(cursor[tp] < len(log) for tp, log in logs.items()):
        tp = rng.choice([tp for tp, log in logs.items() if cursor[tp] < len(log)])
        take = rng.randint(1, 15)
        chunk = logs[tp][cursor[tp] : cursor[tp] + take]
        cursor[tp] += len(chunk)
        order.feed(tp, chunk)
        if cursor[tp] == len(logs[tp]):
            order.done(tp)
        out += order.ready()
    out += order.rest()

    assert [(r.topic, r.partition, r.offset) for r in out] == [
        (r.topic, r.partition, r.offset) for r in heads_merge(logs)
    ]


@pytest.mark.usefixtures("keys_by")
def test_nothing_is_released_while_an_open_partition_has_not_been_read() -> None:
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    order = TimeOrder([a, b])
    order.feed(a, [record(a, 0, 10)])
    assert order.ready() == []
    order.feed(b, [record(b, 0, 5), record(b, 1, 20)])
    assert [(r.partition, r.offset) for r in order.ready()] == [(1, 0), (0, 0)]
    order.done(a)
    order.done(b)
    assert [(r.partition, r.offset) for r in order.rest()] == [(1, 1)]


@given(
    timestamps=st.lists(st.integers(-1, 2**41) | st.integers(2**41, 2**63 - 1), max_size=20),
    first_offset=st.integers(0, 2**62),
    n=st.integers(1, 64),
    data=st.data(),
)
def test_the_compiled_keys_are_the_python_loops(
    timestamps: list[int], first_offset: int, n: int, data: st.DataObject
) -> None:
    if source.time_order_keys is None:
        pytest.skip("baton_scorer_native is not built here")
    tps = [TopicPartition("t", p) for p in range(n)]
    tp = data.draw(st.sampled_from(tps))
    records = [record(tp, first_offset + i, ts) for i, ts in enumerate(timestamps)]

    def fed(order: TimeOrder) -> tuple[list, dict, dict]:
        order.feed(tp, records)
        order.feed(tp, records[::-1])  # a second feed starts from the first's high mark
        return order.buffer, order.high, order.last_key

    compiled = fed(TimeOrder(tps))
    saved, source.time_order_keys = source.time_order_keys, None
    try:
        python = fed(TimeOrder(tps))
    finally:
        source.time_order_keys = saved

    assert compiled == python


def test_the_compiled_loop_takes_ordinary_records() -> None:
    if source.time_order_keys is None:
        pytest.skip("baton_scorer_native is not built here")
    tp = TopicPartition("t", 1)
    records = [record(tp, 10 + i, 1_767_225_600_000 + i) for i in range(5)]
    buffer: list = []

    keyed = source.time_order_keys(records, buffer, records[0].timestamp, 3, 1)

    assert keyed == (records[-1].timestamp, ((records[-1].timestamp * 3 + 1) << 63) + 14)
    assert [r for _, r in buffer] == records
