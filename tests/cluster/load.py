"""Steady HTTP load on ingest, one request per event, and the pause its clients saw.

:func:`steady_load` sends ``count`` events at ``rate`` per second with at most
``concurrency`` requests in flight (a stalled ingest stalls the sender, as it would a
real client) and records when each was sent and answered; :func:`pause` sums up the
worst a client saw.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class Sent:
    """One request: its body, when it went out and came back, and the status (0: none)."""

    body: dict[str, Any]
    sent_at: float
    done_at: float
    status: int

    @property
    def acked(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Load:
    """What a running :func:`steady_load` has seen so far."""

    sent: list[Sent] = field(default_factory=list)

    @property
    def acked(self) -> int:
        return sum(s.acked for s in self.sent)

    @property
    def refused(self) -> int:
        """Requests answered 4xx: the load itself is wrong, not the cluster."""
        return sum(400 <= s.status < 500 for s in self.sent)


@dataclass(frozen=True)
class Pause:
    """The longest request, the longest time without a 2xx, the requests not acked, and
    the rate the load reached (requests per second)."""

    max_latency_s: float
    max_ack_gap_s: float
    not_acked: int
    rate: float

    def __str__(self) -> str:
        return (
            f"max ingest latency {self.max_latency_s:.2f} s, longest gap between acks "
            f"{self.max_ack_gap_s:.2f} s, {self.not_acked} request(s) not acked"
        )


def pause(sent: list[Sent]) -> Pause:
    acks = sorted(s.done_at for s in sent if s.acked)
    gaps = [later - earlier for earlier, later in itertools.pairwise(acks)]
    return Pause(
        max_latency_s=max(s.done_at - s.sent_at for s in sent),
        max_ack_gap_s=max(gaps, default=0.0),
        not_acked=sum(not s.acked for s in sent),
        rate=len(sent) / (max(s.done_at for s in sent) - min(s.sent_at for s in sent)),
    )


async def steady_load(
    http: httpx.AsyncClient,
    url: str,
    body: Callable[[int], dict[str, Any]],
    count: int,
    rate: float,
    load: Load,
    concurrency: int = 32,
    auth: tuple[str, str] | None = None,
) -> None:
    """POST ``body(i)`` to ``url`` for i in range(count), paced at ``rate`` per second."""
    slots = asyncio.Semaphore(concurrency)

    async def post(payload: dict[str, Any]) -> None:
        sent_at = time.monotonic()
        try:
            status = (await http.post(url, json=payload, auth=auth)).status_code
        except httpx.HTTPError:
            status = 0
        finally:
            slots.release()
        load.sent.append(Sent(payload, sent_at, time.monotonic(), status))

    started = time.monotonic()
    async with asyncio.TaskGroup() as requests:  # cancelling the load cancels them all
        for i in range(count):
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))  # the pace
            await slots.acquire()
            requests.create_task(post(body(i)))
