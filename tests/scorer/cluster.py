"""The scoring step as the workers run it, in memory: for the pure merge tests.

Each lead key has a FIFO on the stitched topic (Kafka keeps one key's order); which key,
or which external event, goes next is up to the test. A crash after a record's states
were saved and before its offset committed runs it again after a restart: with what it
sent lost (``"lost"``: the crash came before the sends) or delivered (``"dup"``).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from baton_scorer import core, step
from baton_scorer.handoff import Link
from baton_scorer.identity import Alias
from baton_scorer.rules import Rules
from baton_shared.schemas import LeadEvent, Transition


class Cluster:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.states: dict[str, Any] = {}
        self.links: dict[str, Link] = {}
        self.identity = step.Identity(self.links, self.states.__setitem__)
        self.aliases: dict[str, Alias] = {}
        self.internal: dict[str, deque[bytes]] = {}
        self.transitions: list[Transition] = []
        self.trace: list[str] = []  # each record run, for a failing example's notes

    def state(self, lead_id: str) -> Any:
        state = self.states.get(lead_id)
        if state is None:
            state = self.states[lead_id] = core.new_state()
        return state

    def run(self, source: step.Source, value: bytes, crash: str | None = None) -> None:
        self.trace.append(f"{source.value} {crash or ''} {value[:160]!r}")
        for attempt in range(2 if crash else 1):
            out = step.score_batch([(source, value)], self.state, self.rules, self.identity)
            assert not out.dead_letters, out.dead_letters
            if crash == "lost" and attempt == 0:
                self.identity.sent.clear()
                continue
            self.transitions += out.transitions
            for _, _anonymous in out.to_stitch:
                event = LeadEvent.model_validate_json(value)
                self.aliases.setdefault(event.anonymous_id or "", Alias())
                for released in step.stitch_event(self.aliases.__getitem__, event):
                    self.internal.setdefault(released.lead_id, deque()).append(released.to_bytes())
            for key, handed in out.handoffs:
                self.internal.setdefault(key, deque()).append(handed)
            if crash:
                self.identity.sent.clear()

    def deliver(
        self, events: list[LeadEvent], rnd: random.Random | None = None, crashes: float = 0.0
    ) -> None:
        """Every external event in the given order, interleaved with the internal records
        (at random when ``rnd`` is given), until nothing is in flight."""
        pending = deque(events)
        for _ in range(100_000):
            keys = [k for k, q in self.internal.items() if q]
            if not pending and not keys:
                return
            crash = None
            if rnd is not None and rnd.random() < crashes:
                crash = rnd.choice(["lost", "dup"])
            if pending and (not keys or rnd is None or rnd.random() < 0.5):
                self.run(step.Source.EVENTS, pending.popleft().to_bytes(), crash)
                continue
            key = rnd.choice(keys) if rnd is not None else keys[0]
            self.run(step.Source.STITCHED, self.internal[key].popleft(), crash)
        raise AssertionError("records still in flight after 100000 steps: a handoff loop")

    def resolve(self, lead_id: str) -> str:
        """The lead ``lead_id`` ends up in, following merge links."""
        for _ in range(100):
            link = self.links.get(lead_id)
            if link is None or link.merged_into is None:
                return lead_id
            lead_id = link.merged_into
        raise AssertionError("a cycle of merge links")
