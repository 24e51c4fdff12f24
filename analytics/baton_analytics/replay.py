"""Re-scoring history with the scorer's own scoring step. Pure: no I/O, explicit end time.

:class:`Replay` is fed records in the order the live scorer would see them and runs
each through the same functions the scorer's stream shell runs
(:mod:`baton_scorer.step`):

* an event with an ``anonymous_id`` is stitched (``step.stitch_event``): held until an
  identify links it, then scored re-keyed to the lead;
* any other event is scored once (``step.score``; duplicates by ``event_id`` change
  nothing); runs of them go to the compiled core in one call when it is installed;
* an alias or identify that names another lead merges the two as the live scorer does
  (:mod:`baton_analytics.replay_merge`); from then on the id merged away is the
  survivor's (its events, a rep's actions on it, its transitions and first event);
* a rep's ``qualified`` (BANT) or ``rejected`` activity goes through ``step.rep_action``;
* :meth:`Replay.finish` fires the recycle timers due by the end of the range
  (``step.fire_timers``), as the live scorer's timer would have, in event time.

Same step, same rules file, same order: the same transitions, ids included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pydantic import ValidationError

from baton_analytics.replay_merge import Merges
from baton_scorer import core, step
from baton_scorer.handoff import MERGING_TYPES
from baton_scorer.identity import Alias
from baton_scorer.rules import Rules
from baton_shared.schemas import Activity, LeadEvent, Transition

T = TypeVar("T")
AFTER_A_STOP = 64  # records the compiled core reads on the calling thread (no reader thread)


@dataclass
class ReplayResult:
    rules_version: str
    transitions: list[Transition]
    first_event_at: dict[str, float]
    final_scores: dict[str, float]
    events: int = 0
    duplicates: int = 0
    held_anonymous: int = 0
    merged: dict[str, str] = field(default_factory=dict)  # id merged away -> its survivor


@dataclass
class Replay:
    rules: Rules
    states: dict[str, Any] = field(default_factory=dict)  # core.LeadState
    aliases: dict[str, Alias] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    first_event_at: dict[str, float] = field(default_factory=dict)
    events: int = 0
    duplicates: int = 0
    _index: Any = None  # the compiled core's index of ``states`` (score_records)
    merges: Merges = field(init=False)

    def __post_init__(self) -> None:
        self.merges = Merges(self.states, self.rules)

    def event(self, event: LeadEvent) -> None:
        self.events += 1
        if event.anonymous_id is None:
            self._score(event)
            return
        for released in step.stitch_event(self._alias, event):
            self._score(released)

    def score_events(self, events: list[LeadEvent]) -> None:
        """:meth:`event` for each of ``events``, in order; runs of events without an
        ``anonymous_id`` (nor an alias or identify) are scored in one call to the core."""
        for run, other in runs(events, _plain):
            self._score_run(run)
            if other is not None:
                self.event(other)

    def score_records(self, values: list[bytes]) -> None:
        """:meth:`score_events` for encoded LeadEvents (``leads.events`` values), in order;
        a value that does not decode is skipped, as the live scorer dead-letters it.

        The compiled core reads the values itself: every record in the exact layout
        ``LeadEvent.to_bytes`` writes is scored without building a LeadEvent; anything
        else (another layout, an anonymous event) is decoded by pydantic and takes
        :meth:`event`'s path, as does an alias or identify. Same transitions either way."""
        if core.KIND != "native":
            self.score_events(list(_decoded(values)))
            return
        native = core.native_core(self.rules)
        # How many records one call may read: all, until it stops at one left to Python;
        # then a few (what the core reads ahead of a stop is wasted), twice as many after
        # each call that did not stop.
        i, end, reach = 0, len(values), len(values)
        while i < end:
            if self._index is None:
                self._index = core.lead_index()
            upto = min(end, i + reach)
            run, start = (values, i) if upto == end else (values[i:upto], 0)
            transitions, scored, duplicates, stop = native.score_records(
                self.states, self._index, run, start, self.first_event_at
            )
            i += stop - start
            self.events += scored
            self.duplicates += duplicates
            if transitions:
                self.transitions += self.merges.relabel(transitions)
            if i < upto:
                for event in _decoded(values[i : i + 1]):
                    self.event(event)
                i += 1
                reach = AFTER_A_STOP
            else:
                reach *= 2

    def _score_run(self, events: list[LeadEvent]) -> None:
        if not events:
            return
        self.events += len(events)
        if core.KIND != "native":
            for event in events:
                self._score(event)
            return
        transitions, duplicates = core.native_core(self.rules).score_batch(
            self.states, events, self.first_event_at
        )
        self.duplicates += duplicates
        if transitions:
            self.transitions += self.merges.relabel(transitions)

    def _state(self, lead_id: str) -> Any:
        state = self.states.get(lead_id)
        if state is None:
            state = self.states[lead_id] = core.new_state()
        return state

    def _alias(self, anonymous_id: str) -> Alias:
        alias = self.aliases.get(anonymous_id)
        if alias is None:
            alias = self.aliases[anonymous_id] = Alias()
        return alias

    def _score(self, event: LeadEvent) -> None:
        merges = self.merges
        if event.type in MERGING_TYPES and merges.merges(event):
            self._merge(event)
            return
        lead_id = merges.survivor(event.lead_id)
        if lead_id != event.lead_id:
            event = event.model_copy(update={"lead_id": lead_id})  # merged away
        at = event.occurred_at.timestamp()
        transitions = step.score(self._state(lead_id), event, at, self.rules)
        if transitions is None:
            self.duplicates += 1
            return
        first = self.first_event_at.get(lead_id)
        if first is None or at < first:
            self.first_event_at[lead_id] = at
        if transitions:
            self.transitions += transitions

    def _merge(self, event: LeadEvent) -> None:
        transitions, scored, duplicates = self.merges.run(event)
        self._index = None  # states were replaced: the compiled core's index is stale
        self.duplicates += duplicates
        if scored:
            lead_id = self.merges.survivor(event.lead_id)
            at = event.occurred_at.timestamp()
            if at < self.first_event_at.get(lead_id, at + 1):
                self.first_event_at[lead_id] = at
        self.transitions += transitions

    def activity(self, activity: Activity) -> None:
        """Only a rep's qualification (BANT) or rejection changes a lead's stage."""
        lead_id = self.merges.survivor(activity.lead_id)
        if lead_id != activity.lead_id:
            activity = activity.model_copy(update={"lead_id": lead_id})
        transitions = step.rep_action(self._state, activity, self.rules)
        if transitions:
            self.transitions += transitions

    def finish(self, end_at: float | None) -> ReplayResult:
        """Fire the timers due by ``end_at`` (epoch seconds; None: fire none), earliest first."""
        merged = self.merges.survivor_of
        leads = [(lead, s) for lead, s in self.states.items() if lead not in merged]
        if end_at is not None:
            due = sorted((s.due, lead) for lead, s in leads if s.due is not None)
            fired = [lead_id for when, lead_id in due if when <= end_at]
            self.transitions += step.fire_timers(fired, self.states.__getitem__, end_at, self.rules)
        scores_at = end_at
        final_scores = {}
        for lead_id, state in leads:
            t = scores_at if scores_at is not None else (state.watermark or 0.0)
            final_scores[lead_id] = round(core.score_at(state, t, self.rules), 6)
        for lead_id, survivor in merged.items():
            at = self.first_event_at.pop(lead_id, None)
            if at is not None and at < self.first_event_at.get(survivor, at + 1):
                self.first_event_at[survivor] = at
        held = sum(len(a.pending) for a in self.aliases.values())
        return ReplayResult(
            rules_version=self.rules.version,
            transitions=self.transitions,
            first_event_at=self.first_event_at,
            final_scores=final_scores,
            events=self.events,
            duplicates=self.duplicates,
            held_anonymous=held,
            merged=dict(merged),
        )


def _plain(event: LeadEvent) -> bool:
    """Scored as it is: neither stitched first nor able to merge two leads."""
    return event.anonymous_id is None and event.type not in MERGING_TYPES


def _decoded(values: list[bytes]) -> Iterator[LeadEvent]:
    for value in values:
        try:
            yield LeadEvent.model_validate_json(value)
        except ValidationError:
            continue  # undecodable: the live scorer dead-lettered it


def replay_all(
    items: list[LeadEvent | Activity], rules: Rules, end_at: float | None
) -> ReplayResult:
    """Replay an in-memory list (already in arrival order)."""
    replay = Replay(rules)
    for run, activity in runs(items, lambda item: isinstance(item, LeadEvent)):
        replay.score_events(run)  # type: ignore[arg-type]
        if activity is not None:
            replay.activity(activity)  # type: ignore[arg-type]
    return replay.finish(end_at)


def runs(items: Iterable[T], in_run: Callable[[T], bool]) -> Iterator[tuple[list[T], T | None]]:
    """``items`` as runs of those ``in_run`` accepts, each with the item that ended it
    (None after the last run)."""
    run: list[T] = []
    for item in items:
        if in_run(item):
            run.append(item)
            continue
        yield run, item
        run = []
    yield run, None


def transitions_from(result: ReplayResult, since_at: float) -> ReplayResult:
    """Only the transitions at or after ``since_at`` (event time, epoch seconds): a window
    re-scored with every lead's earlier history counted."""
    kept = [t for t in result.transitions if t.occurred_at.timestamp() >= since_at]
    return replace(result, transitions=kept)
