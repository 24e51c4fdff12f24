"""Known leads merged in a replay as the live scorer merges them. Pure: no I/O.

An alias, or an identify of a user id carrying an email, that names another lead runs
through the scorer's own step with its merge bookkeeping (``step.score_batch`` with an
``Identity``); the records the live scorer would send each other on the stitched topic
(merge requests, hand-overs, forwarded events) are run here at once, in the order they
are sent, so the same lead survives with the same merged state and transitions.

A lead merged away keeps no state of its own: its entry in the replay's ``states`` is
the survivor's state object, so an event keyed by the old id (scored by the compiled
core straight from its bytes, say) lands in the survivor, as the live scorer forwards
it there; :meth:`Merges.relabel` gives its transitions the survivor's id.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from baton_scorer import core, handoff, step
from baton_scorer.handoff import Link
from baton_scorer.rules import Rules
from baton_shared.ids import stable_id
from baton_shared.schemas import LeadEvent, Transition


@dataclass
class Merges:
    states: dict[str, Any]  # the replay's (core.LeadState), shared with it
    rules: Rules
    links: dict[str, Link] = field(default_factory=dict)
    survivor_of: dict[str, str] = field(default_factory=dict)  # only ids merged away
    members: dict[str, list[str]] = field(default_factory=dict)  # survivor -> ids merged in
    _replaced: set[str] = field(default_factory=set)
    identity: step.Identity = field(init=False)

    def __post_init__(self) -> None:
        self.identity = step.Identity(self.links, self._replace)

    def survivor(self, lead_id: str) -> str:
        return self.survivor_of.get(lead_id, lead_id)

    def merges(self, event: LeadEvent) -> bool:
        """Whether ``event`` (an alias or identify) links two leads not yet one."""
        lead_id = self.survivor(event.lead_id)
        if lead_id != event.lead_id:
            event = event.model_copy(update={"lead_id": lead_id})  # as it is forwarded
        other = handoff.merge_target(event)
        return other is not None and self.survivor(other) != lead_id

    def run(self, event: LeadEvent) -> tuple[list[Transition], int, int]:
        """Score ``event`` and make the merge it asks for: its transitions and those of the
        merge, and how many events were scored and dropped as duplicates."""
        queue = deque([event.to_bytes()])
        transitions: list[Transition] = []
        scored = duplicates = 0
        while queue:
            value = queue.popleft()
            out = step.score_batch(
                [(step.Source.STITCHED, value)], self._state, self.rules, self.identity
            )
            transitions += out.transitions
            scored += out.scored
            duplicates += out.duplicates
            queue.extend(record for _, record in out.handoffs)
        self._settle()
        return transitions, scored, duplicates

    def relabel(self, transitions: list[Transition]) -> list[Transition]:
        """Transitions scored under an id merged away, as the survivor's."""
        survivor_of = self.survivor_of
        if not survivor_of:
            return transitions
        return [
            t if t.lead_id not in survivor_of else _as(t, survivor_of[t.lead_id])
            for t in transitions
        ]

    def _state(self, lead_id: str) -> Any:
        state = self.states.get(lead_id)
        if state is None:
            state = self.states[lead_id] = core.new_state()
        return state

    def _replace(self, lead_id: str, state: Any) -> None:
        self.states[lead_id] = state
        self._replaced.add(lead_id)

    def _settle(self) -> None:
        """After a merge: every id merged away points at its survivor and shares its state."""
        if not self._replaced:
            return
        survivors = set()
        for lead_id in self._replaced:
            survivor = self._follow(lead_id)
            survivors.add(survivor)
            if survivor == lead_id:
                continue
            moved = [lead_id, *self.members.pop(lead_id, ())]
            for merged in moved:
                self.survivor_of[merged] = survivor
            self.members.setdefault(survivor, []).extend(moved)
        self._replaced.clear()
        for survivor in survivors:
            state = self.states[survivor]
            for merged in self.members.get(survivor, ()):
                self.states[merged] = state

    def _follow(self, lead_id: str) -> str:
        seen = {lead_id}
        link = self.links.get(lead_id)
        while link is not None and link.merged_into is not None:
            lead_id = link.merged_into
            if lead_id in seen:
                raise RuntimeError("a cycle of merges in one process")  # never sequentially
            seen.add(lead_id)
            link = self.links.get(lead_id)
        return lead_id


def _as(transition: Transition, lead_id: str) -> Transition:
    """``transition`` as the lead ``lead_id`` makes it (the id is of lead, stage, trigger)."""
    tid = stable_id(lead_id, transition.to_stage.value, transition.trigger_event_id)
    return transition.model_copy(update={"lead_id": lead_id, "transition_id": tid})
