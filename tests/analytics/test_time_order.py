"""The merge of partitions into time order: whole batches sorted at once give exactly
the order of the record-at-a-time k-way merge, however the records arrive."""

from __future__ import annotations

import heapq
import random

import pytest
from aiokafka import TopicPartition

from baton_analytics.source import Fetched, TimeOrder

Key = tuple[int, str, int, int]


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
